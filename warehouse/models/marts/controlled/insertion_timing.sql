-- Forgetting after insertion (STUDIES §5, Hubble's timing models): per unit with a step x
-- category x duplication bin x steps since the last inserted copy, memorization rate (Wilson
-- 95%) and mean loss (t 95%). steps_since_last_insert = step - 1 - insert_last_step: updates
-- made after the one that trained the last copy (stepN has made updates 0..N-1). Sequences
-- whose window had not ended at the checkpoint (insert_last_step >= step) are left out;
-- steps since are binned like copies (0, then powers of two).
with seqs as (
    select *, step - 1 - insert_last_step as steps_since_last_insert
    from {{ ref('int_scores_controlled') }}
    where step is not null and insert_last_step is not null and insert_last_step < step
),
cells as (
    select model, revision, dataset, step, category, duplicates_bin,
           {{ power_of_two_bin('steps_since_last_insert') }} as steps_since_bin,
           min(steps_since_last_insert) as min_steps_since, max(steps_since_last_insert) as max_steps_since,
           count(*)::bigint as n_scored, count_if(is_memorized)::bigint as n_memorized,
           count(loss)::bigint as n_loss, avg(loss) as mean_loss, stddev_samp(loss) as sd_loss
    from seqs
    group by all
)
select
    c.model,
    c.revision,
    c.dataset,
    c.step,
    u.family,
    u.n_params,
    r.role,
    c.category,
    c.duplicates_bin,
    c.steps_since_bin,
    c.min_steps_since,
    c.max_steps_since,
    {{ rate_and_loss_with_intervals('c') }}
from cells as c
join {{ ref('int_units') }} as u on u.model = c.model and u.revision = c.revision and u.dataset = c.dataset
join {{ ref('int_unit_roles') }} as r on r.model = c.model and r.revision = c.revision
