-- Memorization rate per unit. Sparse (memorized-index) units: the population is the scored
-- range, missing rows are non-memorized, and means over scores are unknown (NULL).
-- *_seen: over the sequences the unit had trained on (membership 'member' by the exposure of
-- its model and dataset, seen_exposure says which kind), so checkpoints are not diluted by
-- sequences they have not reached; NULL when no exposure is declared.
with seen as (
    select model, revision, dataset, n_sequences as n_seen, n_memorized as n_memorized_seen
    from {{ ref('int_unit_membership_counts') }}
    where membership = 'member'
)
select
    u.model,
    u.family,
    u.ladder,
    u.revision,
    u.dataset,
    u.step,
    u.n_params,
    u.tokens_seen,
    u.train_flops,
    (case when u.is_sparse then u.n_scored else coalesce(s.n_rows, 0) end)::bigint as n_scored,
    coalesce(s.n_memorized_rows, 0)::bigint as n_memorized,
    coalesce(s.n_memorized_rows, 0)::double
        / nullif(case when u.is_sparse then u.n_scored else coalesce(s.n_rows, 0) end, 0) as memorization_rate,
    {{ wilson_bound('coalesce(s.n_memorized_rows, 0)',
                    'case when u.is_sparse then u.n_scored else coalesce(s.n_rows, 0) end', '-') }}
        as memorization_rate_lo,
    {{ wilson_bound('coalesce(s.n_memorized_rows, 0)',
                    'case when u.is_sparse then u.n_scored else coalesce(s.n_rows, 0) end', '+') }}
        as memorization_rate_hi,
    case when not u.is_sparse then s.sum_score / nullif(s.n_with_score, 0) end as mean_score,
    case when not u.is_sparse then s.sum_prefix_match_len::double / nullif(s.n_with_prefix_match_len, 0) end
        as mean_prefix_match_len,
    case when not u.is_sparse then s.sum_loss / nullif(s.n_with_loss, 0) end as mean_loss,
    -- label certainty (contract v3): NULL when no row of the unit records it
    case when s.n_with_certainty > 0 then s.n_label_uncertain end::bigint as n_label_uncertain,
    case when s.n_with_certainty > 0 then s.n_memorized_uncertain end::bigint as n_memorized_uncertain,
    case when s.n_with_certainty > 0 then s.n_label_verified end::bigint as n_label_verified,
    u.is_final_revision,
    e.exposure_kind as seen_exposure,
    n.n_seen,
    n.n_memorized_seen,
    n.n_memorized_seen::double / nullif(n.n_seen, 0) as memorization_rate_seen,
    {{ wilson_bound('n.n_memorized_seen', 'n.n_seen', '-') }} as memorization_rate_seen_lo,
    {{ wilson_bound('n.n_memorized_seen', 'n.n_seen', '+') }} as memorization_rate_seen_hi
from {{ ref('int_units') }} as u
left join {{ ref('int_unit_score_stats') }} as s
  on s.model = u.model and s.revision = u.revision and s.dataset = u.dataset
left join {{ ref('int_unit_exposure') }} as e
  on e.model = u.model and e.revision = u.revision and e.dataset = u.dataset
left join seen as n on n.model = u.model and n.revision = u.revision and n.dataset = u.dataset
