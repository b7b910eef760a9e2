{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['model', 'revision', 'dataset'],
    post_hook=["{{ delete_stale_profile_units() }}"]
) }}
-- The outcome of every never-trained control sequence (first_step NULL) at every profile
-- checkpoint: the cells and the summary's shared-control variance read these few rows instead of
-- the score rows. Incremental per unit (membership fingerprint + profile settings).
with changed as ({{ changed_profile_units() }}),
rows as (
    select s.model, s.revision, s.dataset, c.step, s.seq_idx, o.outcome,
           {{ profile_outcome_value('s', 'o.outcome') }} as value, c.profile_fingerprint
    from {{ ref('int_scores_membership') }} as s
    join changed as c on c.model = s.model and c.revision = s.revision and c.dataset = s.dataset
    cross join {{ profile_outcomes_relation() }} as o
    where s.membership = 'held_out'
      and {{ unit_scan_filter('s.model', 's.revision', 's.dataset', 'select model, revision, dataset from (' ~ changed_profile_units() ~ ')') }}
)
select *, current_timestamp as computed_at from rows where value is not null
