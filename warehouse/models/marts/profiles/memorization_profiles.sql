-- Memorisation profile (STUDIES §4; Lesci et al. 2024): ATT(g, c) per model, outcome, cohort g
-- and checkpoint c, from the incremental int_profile_cells. Cohort and event-time numbers come
-- from the current checkpoint list, so they stay right when a checkpoint is inserted.
-- Cells without an estimate (fewer than 2 treated or 2 control sequences) are left out.
with ck as (
    select model, dataset, step, checkpoint_index from {{ ref('int_profile_checkpoints') }}
)
select
    c.model,
    c.dataset,
    c.outcome,
    b.checkpoint_index + 1 as cohort_index,
    c.base_step as cohort_first_step,
    c.next_step - 1 as cohort_last_step,
    c.checkpoint_step,
    k.checkpoint_index - (b.checkpoint_index + 1) as event_time,
    c.base_step,
    c.n_treated,
    c.n_control,
    c.att,
    c.att_se,
    c.att - 1.96 * c.att_se as att_lo,
    c.att + 1.96 * c.att_se as att_hi
from {{ ref('int_profile_cells') }} as c
join ck as b on b.model = c.model and b.dataset = c.dataset and b.step = c.base_step
join ck as n on n.model = c.model and n.dataset = c.dataset and n.step = c.next_step
    and n.checkpoint_index = b.checkpoint_index + 1
join ck as k on k.model = c.model and k.dataset = c.dataset and k.step = c.checkpoint_step
where c.att is not null and not isnan(c.att) and not isnan(c.att_se)
