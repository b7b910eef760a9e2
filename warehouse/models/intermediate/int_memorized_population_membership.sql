{{ config(materialized='table') }}
-- Memorized rows that also lie inside another unit's population (only needed when two units
-- scored different sequence sets; empty when every unit scored the same population).
-- ASOF join: the island starting at or before seq_idx, then check seq_idx < hi.
with islands as (
    select distinct population_key, lo, hi from {{ ref('int_unit_populations') }}
),
other_keys as (
    select u.model, u.revision, u.dataset, k.population_key
    from {{ ref('int_units') }} as u
    join (select distinct population_key from islands) as k on k.population_key <> u.population_key
),
candidates as (
    select m.model, m.revision, m.dataset, m.seq_idx, o.population_key
    from {{ ref('int_memorized_sequences') }} as m
    join other_keys as o on o.model = m.model and o.revision = m.revision and o.dataset = m.dataset
)
select c.model, c.revision, c.dataset, c.seq_idx, c.population_key
from candidates as c
asof join islands as i on i.population_key = c.population_key and c.seq_idx >= i.lo
where c.seq_idx < i.hi
