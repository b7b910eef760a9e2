{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['model', 'revision', 'dataset'],
    post_hook=["delete from {{ this }} as t where not exists (select 1 from {{ ref('int_unit_exposure') }} as u where u.model = t.model and u.revision = t.revision and u.dataset = t.dataset and u.membership_fingerprint = t.membership_fingerprint)"]
) }}
-- Per unit and membership (member / not_yet_seen / held_out / unknown): sequences in the unit's
-- population and how many are memorized, so rates over what a checkpoint has seen are not
-- diluted by sequences it has not reached. Dense units count their rows; sparse
-- (memorized-index) units count memorized rows from the rows and the population from its
-- islands (arithmetically for a rule, by joining the exposure table for a table). Units
-- without an exposure declaration get no rows. Incremental per unit (membership_fingerprint).
with units as (
    select e.*, u.is_sparse, u.population_key
    from {{ ref('int_unit_exposure') }} as e
    join {{ ref('int_units') }} as u using (model, revision, dataset)
    where e.exposure_kind is not null
),
changed as (
    select * from units as u
    {% if is_incremental() %}
    where not exists (select 1 from {{ this }} as t
                      where t.model = u.model and t.revision = u.revision and t.dataset = u.dataset
                        and t.membership_fingerprint = u.membership_fingerprint)
    {% endif %}
),
row_counts as (
    select s.model, s.revision, s.dataset, s.membership,
           count(*) as n_rows, count(*) filter (where s.is_memorized) as n_memorized
    from {{ ref('int_scores_membership') }} as s
    join changed as c on c.model = s.model and c.revision = s.revision and c.dataset = s.dataset
    group by all
),
sparse_islands as (
    select c.model, c.revision, c.step, c.exposure_kind, c.dataset, c.rule_sequences_per_step as sps,
           c.rule_train_steps, i.lo, i.hi
    from changed as c
    join {{ ref('int_unit_populations') }} as i
      on i.model = c.model and i.revision = c.revision and i.dataset = c.dataset
    where c.is_sparse
),
-- rule: [0, seen_end) members, [seen_end, trained_end) not yet seen, [trained_end, inf) held out
rule_bounds as (
    select *,
           coalesce(sps * least(step, rule_train_steps), sps * step, sps * rule_train_steps, hi) as seen_end,
           coalesce(sps * rule_train_steps, hi) as trained_end
    from sparse_islands where exposure_kind = 'rule'
),
rule_counts as (
    select model, revision, dataset, 'member' as membership,
           sum(greatest(0, least(hi, seen_end) - lo)) as n_sequences from rule_bounds group by all
    union all
    select model, revision, dataset, 'not_yet_seen',
           sum(greatest(0, least(hi, trained_end) - greatest(lo, seen_end))) from rule_bounds group by all
    union all
    select model, revision, dataset, 'held_out',
           sum(greatest(0, hi - greatest(lo, trained_end))) from rule_bounds group by all
),
table_islands as (
    select * from sparse_islands where exposure_kind = 'table'
),
table_units as (
    select distinct model, revision, dataset, step from table_islands
),
table_rows as (
    select u.model, u.revision, u.dataset,
           case when e.first_step is null then 'held_out'
                when u.step is null or e.first_step < u.step then 'member'
                else 'not_yet_seen' end as membership,
           count(*) as n_sequences
    from table_units as u
    join {{ ref('stg_memwh__exposure') }} as e on e.model = u.model and e.dataset = u.dataset
    asof join table_islands as t
      on t.model = u.model and t.revision = u.revision and t.dataset = u.dataset and e.seq_idx >= t.lo
    where e.seq_idx < t.hi
    group by all
),
table_counts as (
    select * from table_rows
    union all
    -- population indices the table has no row for
    select i.model, i.revision, i.dataset, 'unknown', sum(i.hi - i.lo) - coalesce(max(r.n), 0)
    from table_islands as i
    left join (select model, revision, dataset, sum(n_sequences) as n from table_rows group by all) as r
      using (model, revision, dataset)
    group by all
),
population_counts as (
    select * from rule_counts union all select * from table_counts
)
select
    c.model, c.revision, c.dataset, c.membership_fingerprint, m.membership,
    coalesce(case when c.is_sparse then p.n_sequences else r.n_rows end, 0)::bigint as n_sequences,
    coalesce(r.n_memorized, 0)::bigint as n_memorized
from changed as c
join (select 'member' as membership union all select 'not_yet_seen' union all select 'held_out'
      union all select 'unknown') as m on true
left join row_counts as r
  on r.model = c.model and r.revision = c.revision and r.dataset = c.dataset and r.membership = m.membership
left join population_counts as p
  on p.model = c.model and p.revision = c.revision and p.dataset = c.dataset and p.membership = m.membership
