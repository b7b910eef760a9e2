{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['model', 'dataset', 'outcome', 'base_step', 'next_step', 'checkpoint_step'],
    post_hook=["{{ delete_stale_profile_cells() }}"]
) }}
-- Difference-in-differences cells of the memorisation profile (STUDIES §4, Callaway & Sant'Anna
-- ATT(g, c) with never-trained controls, no covariates, base period c_{g-1}):
--   cohort g   = sequences with c_{g-1} <= first_step < c_g (first seen by checkpoint c_g);
--                with var profile_exclude_repeated, only those seen once (n_exposures NULL or <= 1)
--   controls   = sequences never trained on (first_step NULL)
--   D(x)       = Y_c(x) - Y_{c_{g-1}}(x), over sequences scored (non-NULL outcome) at both
--   att        = mean_g(D) - mean_control(D);  att_se = sqrt(var_g/n_g + var_control/n_control)
--                (sample variances); NULL unless n_treated >= 2 and n_control >= 2.
-- Incremental per cell: a cell reads only its base and checkpoint units, and is recomputed only
-- when one of them (rows, labels, exposure) or the settings change (macros/profiles.sql).
with todo as ({{ profile_cells_todo() }}),
boundaries as (
    select b.model, b.dataset, b.step as base_step, n.step as next_step
    from {{ ref('int_profile_checkpoints') }} as b
    join {{ ref('int_profile_checkpoints') }} as n
      on n.model = b.model and n.dataset = b.dataset and n.checkpoint_index = b.checkpoint_index + 1
),
scored as (
    select s.model, s.dataset, s.step, s.seq_idx, s.first_step, o.outcome,
           {{ profile_outcome_value('s', 'o.outcome') }} as value
    from {{ ref('int_scores_membership') }} as s
    cross join {{ profile_outcomes_relation() }} as o
    where s.first_step is not null and s.step is not null
      {% if var('profile_exclude_repeated', true) %}and coalesce(s.n_exposures, 1) <= 1{% endif %}
      and s.model in (select model from todo)
      and {{ unit_scan_filter('s.model', 's.revision', 's.dataset', profile_cells_todo_units()) }}
),
treated as (
    -- each row with the base step of its cohort: the last checkpoint at or before first_step
    select r.model, r.dataset, r.step, r.seq_idx, r.outcome, r.value, bd.base_step as cohort_base
    from scored as r
    asof join boundaries as bd on bd.model = r.model and bd.dataset = r.dataset and r.first_step >= bd.base_step
    where r.first_step < bd.next_step and r.value is not null
),
treated_stats as (
    select k.model, k.dataset, k.outcome, k.base_step, k.next_step, k.checkpoint_step,
           count(*) as n_treated,
           avg(yc.value - yb.value) as mean_treated,
           var_samp(yc.value - yb.value) as var_treated
    from todo as k
    join treated as yb
      on yb.model = k.model and yb.dataset = k.dataset and yb.outcome = k.outcome and yb.step = k.base_step
     and yb.cohort_base = k.base_step
    join treated as yc
      on yc.model = k.model and yc.dataset = k.dataset and yc.outcome = k.outcome and yc.step = k.checkpoint_step
     and yc.seq_idx = yb.seq_idx
    group by all
),
control_pairs as (
    select distinct model, dataset, outcome, base_step, checkpoint_step from todo
),
control_stats as (
    select k.model, k.dataset, k.outcome, k.base_step, k.checkpoint_step,
           count(*) as n_control,
           avg(yc.value - yb.value) as mean_control,
           var_samp(yc.value - yb.value) as var_control
    from control_pairs as k
    join {{ ref('int_profile_control_values') }} as yb
      on yb.model = k.model and yb.dataset = k.dataset and yb.outcome = k.outcome and yb.step = k.base_step
    join {{ ref('int_profile_control_values') }} as yc
      on yc.model = k.model and yc.dataset = k.dataset and yc.outcome = k.outcome and yc.step = k.checkpoint_step
     and yc.seq_idx = yb.seq_idx
    group by all
)
select
    k.model, k.dataset, k.outcome, k.base_step, k.next_step, k.checkpoint_step,
    k.base_revision, k.checkpoint_revision, k.cell_fingerprint,
    coalesce(t.n_treated, 0) as n_treated,
    coalesce(c.n_control, 0) as n_control,
    t.mean_treated, t.var_treated, c.mean_control, c.var_control,
    case when t.n_treated >= 2 and c.n_control >= 2 then t.mean_treated - c.mean_control end as att,
    case when t.n_treated >= 2 and c.n_control >= 2
         then sqrt(t.var_treated / t.n_treated + c.var_control / c.n_control) end as att_se,
    current_timestamp as computed_at
from todo as k
left join treated_stats as t using (model, dataset, outcome, base_step, next_step, checkpoint_step)
left join control_stats as c using (model, dataset, outcome, base_step, checkpoint_step)
