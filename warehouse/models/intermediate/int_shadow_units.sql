{{ config(materialized='table') }}
-- Every unit with role 'shadow' (int_unit_roles), the population it belongs to (its family and
-- the dataset it scored) and whether it can serve: a shadow model without exposure for that
-- dataset, or with only its memorized rows stored (sparse), cannot say which sequences it
-- trained on (or scored), so it is left out and the reason is shown (memwh build warns).
-- A table (one row per shadow unit): every shadow model downstream reads it, and as a view
-- it would rescan every shadow unit's rows each time.
with shadows as (
    select r.model, r.revision
    from {{ ref('int_unit_roles') }} as r
    where r.role = 'shadow'
),
membership as (
    select s.model, s.revision, s.dataset,
           count(*) filter (where s.membership = 'member') as n_in,
           count(*) filter (where s.membership in ('held_out', 'not_yet_seen')) as n_out,
           count(*) filter (where s.membership = 'unknown') as n_unknown
    from {{ ref('int_scores_membership') }} as s
    join shadows using (model, revision)
    group by all
)
select
    s.model,
    s.revision,
    u.family,
    e.dataset,
    e.exposure_kind,
    e.membership_fingerprint,
    coalesce(m.n_in, 0) as n_in,
    coalesce(m.n_out, 0) as n_out,
    coalesce(m.n_unknown, 0) as n_unknown,
    case
        when e.exposure_status = 'no dataset key' then e.exposure_status
        when e.exposure_kind is null
            then 'no exposure for its dataset: declare it with memwh import exposure'
        when u.is_sparse then 'sparse rows (only memorized sequences stored): score it densely'
    end as exclusion_reason
from shadows as s
join {{ ref('int_units') }} as u using (model, revision)
join {{ ref('int_unit_exposure') }} as e using (model, revision, dataset)
left join membership as m using (model, revision, dataset)
