-- Memorization rate per unit. Sparse (memorized-index) units: the population is the scored
-- range, missing rows are non-memorized, and means over scores are unknown (NULL).
select
    u.model,
    u.family,
    u.revision,
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
    u.is_final_revision
from {{ ref('int_units') }} as u
left join {{ ref('int_unit_score_stats') }} as s on s.model = u.model and s.revision = u.revision
