{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['model', 'dataset'],
    post_hook=["{{ delete_stale_history() }}"]
) }}
-- Per model and sequence memorized at one or more of its checkpoints (STUDIES §6; pythia#29):
-- when it was first and last memorized, at how many checkpoints, whether it was forgotten
-- (not memorized at a later checkpoint that scored it), and when it was trained on (first_step),
-- so "memorized k steps after training on it" is one query. Checkpoints = the model's units with a
-- step and dense rows. Incremental per model: a model's rows are rebuilt when any of its
-- checkpoints (rows, labels, exposure) changes.
with changed as ({{ history_models_changed() }}),
rows as (
    select s.model, s.dataset, s.step, s.seq_idx, s.is_memorized, s.first_step, s.n_exposures, s.membership
    from {{ ref('int_scores_membership') }} as s
    join ({{ history_units() }}) as u on u.model = s.model and u.revision = s.revision and u.dataset = s.dataset
    where s.model in (select model from changed)
      and {{ unit_scan_filter('s.model', 's.revision', 's.dataset', 'select u.model, u.revision, u.dataset from (' ~ history_units() ~ ') as u where (u.model, u.dataset) in (select (model, dataset) from (' ~ history_models_changed() ~ '))') }}
),
{#- From the sparse memorized sets, not from `rows`: read twice, `rows` was materialized whole
    (every score row of every checkpoint: 439M rows and 7 min at the Pythia unit shape); read
    once, DuckDB probes the score scan against these sequences. -#}
firsts as (
    select m.model, m.dataset, m.seq_idx, min(u.step) as first_memorized_step
    from {{ ref('int_memorized_sequences') }} as m
    join ({{ history_units() }}) as u
      on u.model = m.model and u.revision = m.revision and u.dataset = m.dataset
    where (m.model, m.dataset) in (select (model, dataset) from changed)
    group by all
)
select
    r.model,
    r.dataset,
    r.seq_idx,
    any_value(r.first_step) as first_step,
    any_value(r.n_exposures) as n_exposures,
    bool_or(r.membership <> 'unknown') as exposure_known,
    f.first_memorized_step,
    max(r.step) filter (where r.is_memorized) as last_memorized_step,
    count(*) filter (where r.is_memorized) as n_checkpoints_memorized,
    count(*) as n_checkpoints_scored,
    min(r.step) filter (where not r.is_memorized and r.step > f.first_memorized_step) as first_forgotten_step,
    coalesce(bool_or(not r.is_memorized and r.step > f.first_memorized_step), false) as ever_forgotten,
    coalesce(bool_or(r.is_memorized and r.step = m.last_step), false) as memorized_at_last_checkpoint,
    m.history_fingerprint,
    current_timestamp as computed_at
from rows as r
join firsts as f on f.model = r.model and f.dataset = r.dataset and f.seq_idx = r.seq_idx
join changed as m on m.model = r.model and m.dataset = r.dataset
group by r.model, r.dataset, r.seq_idx, f.first_memorized_step, m.history_fingerprint, m.last_step
