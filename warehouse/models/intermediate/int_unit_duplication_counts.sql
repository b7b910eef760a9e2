{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['model', 'revision', 'dataset'],
    post_hook=["{{ delete_stale_units() }}"]
) }}
-- Per unit and duplication count: sequences scored and memorized, for datasets whose
-- per-sequence metadata was ingested (raw.sequences, joined on the unit's data_fingerprint).
-- Never scans score rows: scored counts come from the unit's population islands (shared by all
-- units with the same population), memorized counts from the sparse memorized set. Units whose
-- shards mix datasets (several fingerprints) are left out.
with changed as ({{ changed_units() }}),
units as (
    select u.model, u.revision, u.dataset, u.unit_fingerprint, u.population_key, u.data_fingerprint
    from {{ ref('int_units') }} as u
    join changed as c on c.model = u.model and c.revision = u.revision and c.dataset = u.dataset
    where u.data_fingerprint is not null and not contains(u.data_fingerprint, ',')
),
seqs as (
    select data_fingerprint, seq_idx, duplicates
    from {{ ref('stg_memwh__sequences') }} where duplicates is not null
),
islands as (
    select distinct population_key, lo, hi from {{ ref('int_unit_populations') }}
    where population_key in (select population_key from units)
),
populations as (
    select distinct population_key, data_fingerprint from units
),
scored as (
    select p.population_key, p.data_fingerprint, q.duplicates, count(*) as n_scored
    from populations as p
    join seqs as q on q.data_fingerprint = p.data_fingerprint
    asof join islands as i on i.population_key = p.population_key and q.seq_idx >= i.lo
    where q.seq_idx < i.hi
    group by all
),
memorized as (
    select u.model, u.revision, u.dataset, q.duplicates, count(*) as n_memorized
    from units as u
    join {{ ref('int_memorized_sequences') }} as m
      on m.model = u.model and m.revision = u.revision and m.dataset = u.dataset
    join seqs as q on q.data_fingerprint = u.data_fingerprint and q.seq_idx = m.seq_idx
    group by all
)
select u.model, u.revision, u.dataset, u.unit_fingerprint, s.duplicates, s.n_scored,
       coalesce(m.n_memorized, 0) as n_memorized
from units as u
join scored as s on s.population_key = u.population_key and s.data_fingerprint = u.data_fingerprint
left join memorized as m
  on m.model = u.model and m.revision = u.revision and m.dataset = u.dataset and m.duplicates = s.duplicates
