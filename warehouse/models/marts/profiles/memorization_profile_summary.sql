-- The memorisation profile summarised per model and outcome (STUDIES §4): cohort-size weighted
-- averages w_g = n_g / sum n_g of the cells ATT(g, c) of
--   placebo        event time k < 0 (one row per k; should be near 0 under parallel trends)
--   instantaneous  k = 0, ATT(g, g)
--   persistent     k > 0 (one row per k), ATT(g, g + k)
--   residual       ATT(g, T) at the model's last checkpoint, over cohorts g < T (event_time NULL)
-- Interval: estimate +- 1.96 se with the cohort weights taken as fixed and the controls shared
-- by every cell: se^2 = sum_g w_g^2 var_g / n_g + var(Z) / n_Z, where for each control x
-- Z(x) = sum_g w_g (Y_c(x) - Y_{c_{g-1}}(x)) over the aggregate's cells (n_Z = the controls scored
-- at every checkpoint involved). Cohorts are disjoint, so their terms add; the shared controls
-- enter once, with their covariance across cells, instead of being counted as independent.
with ck as (
    select model, dataset, max(step) as last_step from {{ ref('int_profile_checkpoints') }} group by model, dataset
),
cells as (
    select p.model, p.dataset, p.outcome, p.cohort_index, p.event_time, p.base_step, p.checkpoint_step,
           p.n_treated, p.att, c.var_treated, p.checkpoint_step = ck.last_step as at_last
    from {{ ref('memorization_profiles') }} as p
    join {{ ref('int_profile_cells') }} as c
      on c.model = p.model and c.dataset = p.dataset and c.outcome = p.outcome and c.base_step = p.base_step
     and c.checkpoint_step = p.checkpoint_step
    join ck on ck.model = p.model and ck.dataset = p.dataset
),
tagged as (
    select model, dataset, outcome,
           case when event_time < 0 then 'placebo' when event_time = 0 then 'instantaneous'
                else 'persistent' end as kind,
           event_time, base_step, checkpoint_step, n_treated, att, var_treated
    from cells
    union all
    select model, dataset, outcome, 'residual', null, base_step, checkpoint_step, n_treated, att, var_treated
    from cells where at_last and event_time > 0
),
weighted as (
    select *,
           n_treated::double / sum(n_treated) over g as w,
           count(*) over g as n_cohorts
    from tagged
    window g as (partition by model, dataset, outcome, kind, event_time)
),
agg as (
    select model, dataset, outcome, kind, event_time,
           any_value(n_cohorts) as n_cohorts,
           sum(n_treated)::bigint as n_treated,
           sum(w * att) as estimate,
           sum(w * w * var_treated / n_treated) as var_treated_part
    from weighted
    group by all
),
z as (
    select w.model, w.dataset, w.outcome, w.kind, w.event_time, yb.seq_idx,
           sum(w.w * (yc.value - yb.value)) as z,
           count(*) as n_parts,
           any_value(w.n_cohorts) as n_cohorts
    from weighted as w
    join {{ ref('int_profile_control_values') }} as yb
      on yb.model = w.model and yb.dataset = w.dataset and yb.outcome = w.outcome and yb.step = w.base_step
    join {{ ref('int_profile_control_values') }} as yc
      on yc.model = w.model and yc.dataset = w.dataset and yc.outcome = w.outcome and yc.step = w.checkpoint_step
     and yc.seq_idx = yb.seq_idx
    group by all
),
z_stats as (
    select model, dataset, outcome, kind, event_time, count(*) as n_control, var_samp(z) as var_z
    from z where n_parts = n_cohorts
    group by all
),
est as (
    select a.*, zs.n_control,
           sqrt(a.var_treated_part + zs.var_z / zs.n_control) as se
    from agg as a
    join z_stats as zs
      on zs.model = a.model and zs.dataset = a.dataset and zs.outcome = a.outcome and zs.kind = a.kind
     and zs.event_time is not distinct from a.event_time
    where zs.n_control >= 2
)
select model, dataset, outcome, kind, event_time,
       case when event_time is null then kind else kind || ' ' || event_time end as term,
       n_cohorts, n_treated, n_control,
       estimate, se, estimate - 1.96 * se as lo, estimate + 1.96 * se as hi
from est
where not isnan(estimate) and not isnan(se)
