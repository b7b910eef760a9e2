-- LiRA (Carlini et al. 2022) per audited unit x shadow population x sequence x signal: the
-- unit's oriented signal s against the population's Gaussian fits of the same sequence.
--   online  = log N(s | mean_in, sd_in) - log N(s | mean_out, sd_out)
--   offline = -ln P(Z >= s) under Z ~ N(mean_out, sd_out): the one-sided out-only test,
--             large when s sits far in the out fit's member-side tail (-ln of its p-value)
-- sd_* are the fits' lira_sd_* (var lira_variance, floored at lira_min_sd). NULL below var
-- shadow_min_models models on a side (online needs both sides, offline the out side), and
-- where the unit has no value of the signal.
{%- set min_models = var('shadow_min_models', 2) %}
with audits as (
    select * from {{ ref('int_lira_audits') }}
),
unit_rows as (
    -- with the unit's own membership of each sequence (unknown without exposure)
    select s.model, s.revision, s.dataset, s.seq_idx, s.membership, {{ oriented_signals('s') }}
    from {{ ref('int_scores_membership') }} as s
    join (select distinct model, revision, dataset from audits) as a using (model, revision, dataset)
),
long as (
    unpivot unit_rows on {{ signal_names() }} into name signal value score
),
joined as (
    select
        a.model, a.revision, a.shadow_family, a.dataset, a.is_primary, l.seq_idx, l.signal,
        l.score, l.membership, f.n_in, f.n_out, f.mean_in, f.mean_out, f.lira_sd_in, f.lira_sd_out,
        f.n_in >= {{ min_models }} and f.n_out >= {{ min_models }} as has_in_out,
        f.n_out >= {{ min_models }} as has_out,
        (l.score - f.mean_out) / f.lira_sd_out as z_out
    from long as l
    join audits as a using (model, revision, dataset)
    join {{ ref('int_shadow_fits') }} as f
      on f.family = a.shadow_family and f.dataset = a.dataset
     and f.seq_idx = l.seq_idx and f.signal = l.signal
)
select
    model, revision, shadow_family, dataset, is_primary, seq_idx, signal, score, membership,
    n_in, n_out, mean_in, mean_out, lira_sd_in, lira_sd_out,
    case when has_in_out then
        (-ln(lira_sd_in) - 0.5 * ((score - mean_in) / lira_sd_in) ^ 2)
        - (-ln(lira_sd_out) - 0.5 * z_out ^ 2)
    end as lira_online,
    case when has_out then {{ neg_log_normal_sf('z_out') }} end as lira_offline
from joined
