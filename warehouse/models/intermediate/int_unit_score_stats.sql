-- Per-unit counts and sums over the stored score rows (means are derived in the marts),
-- summed from the incremental int_unit_score_cells.
select
    model,
    revision,
    dataset,
    any_value(unit_fingerprint) as unit_fingerprint,
    sum(n_rows) as n_rows,
    sum(n_memorized) as n_memorized_rows,
    sum(n_with_score) as n_with_score,
    sum(sum_score) as sum_score,
    sum(n_rows) filter (where prefix_match_len is not null) as n_with_prefix_match_len,
    sum(prefix_match_len::bigint * n_rows) as sum_prefix_match_len,
    sum(n_with_loss) as n_with_loss,
    sum(sum_loss) as sum_loss,
    sum(n_with_certainty) as n_with_certainty,
    sum(n_label_uncertain) as n_label_uncertain,
    sum(n_memorized_uncertain) as n_memorized_uncertain,
    sum(n_label_verified) as n_label_verified,
    min(min_seq_idx) as min_seq_idx,
    max(max_seq_idx) as max_seq_idx
from {{ ref('int_unit_score_cells') }}
group by model, revision, dataset
