-- Histogram of prefix_match_len and memorization_score per unit (stored rows; for sparse
-- memorized-index units that is the memorized rows only).
select
    model, revision, dataset, metric, bin_lower, bin_upper, n_sequences::bigint as n_sequences,
    n_sequences::double / sum(n_sequences) over (partition by model, revision, dataset, metric) as fraction
from {{ ref('int_unit_score_histograms') }}
