{{ config(materialized='table') }}
-- Islands common to two population keys (both orders, and each key with itself), so the size
-- of any pair's common population, optionally cut at a seq_idx limit, is a small sum.
-- Different keys are intersected with a sweep over island endpoints (each key's islands are
-- disjoint, so coverage 2 = inside both), never with a range self-join.
with islands as (
    select distinct population_key, lo, hi from {{ ref('int_unit_populations') }}
),
keys as (
    select distinct population_key from islands
),
key_pairs as (
    select a.population_key as key_a, b.population_key as key_b
    from keys as a join keys as b on a.population_key <> b.population_key
),
events as (
    select kp.key_a, kp.key_b, i.lo as pos, 1 as delta
    from key_pairs as kp join islands as i on i.population_key in (kp.key_a, kp.key_b)
    union all
    select kp.key_a, kp.key_b, i.hi as pos, -1 as delta
    from key_pairs as kp join islands as i on i.population_key in (kp.key_a, kp.key_b)
),
positions as (
    select key_a, key_b, pos, sum(delta) as delta from events group by key_a, key_b, pos
),
coverage as (
    select
        key_a, key_b, pos,
        sum(delta) over (partition by key_a, key_b order by pos rows unbounded preceding) as covered,
        lead(pos) over (partition by key_a, key_b order by pos) as next_pos
    from positions
)
select key_a as population_key_a, key_b as population_key_b, pos as lo, next_pos as hi
from coverage
where covered = 2 and next_pos > pos
union all
select population_key, population_key, lo, hi from islands
