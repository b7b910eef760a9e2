{{ config(materialized='table') }}
-- The population of each unit (model, revision, dataset: the sequences it scored) as disjoint [lo, hi) seq_idx islands.
-- Runs whose rows fill [seq_start, seq_end) (and sparse memorized-index imports, whose population
-- is that range by definition) contribute their range without reading rows; only irregular runs
-- (e.g. every 20th index) are read and cut into islands. Units with the same islands share a
-- population_key, so pairwise models never compare dense row sets.
with runs as (
    select
        *,
        coalesce(
            seq_start is not null and seq_end is not null and seq_end > seq_start
            and (rows_are_sparse or population = seq_end - seq_start),
            false
        ) as is_range
    from {{ ref('stg_memwh__runs') }}
),
irregular_rows as (
    select
        s.model, s.revision, s.dataset, s.run_id, s.seq_idx,
        s.seq_idx - row_number() over (partition by s.run_id order by s.seq_idx) as grp
    from {{ ref('stg_memwh__scores') }} as s
    where s.run_id in (select run_id from runs where not is_range)
),
ranges as (
    select model, revision, dataset, seq_start as lo, seq_end as hi from runs where is_range
    union all
    select model, revision, dataset, min(seq_idx) as lo, max(seq_idx) + 1 as hi
    from irregular_rows group by model, revision, dataset, run_id, grp
),
marked as (
    select
        *,
        case when lo <= max(hi) over (
            partition by model, revision, dataset order by lo, hi
            rows between unbounded preceding and 1 preceding) then 0 else 1 end as starts_island
    from ranges
),
numbered as (
    select *, sum(starts_island) over (
        partition by model, revision, dataset order by lo, hi rows unbounded preceding) as island
    from marked
),
islands as (
    select model, revision, dataset, min(lo) as lo, max(hi) as hi
    from numbered group by model, revision, dataset, island
)
-- order-independent fingerprint of the island set (a window, not a self-join)
select
    model, revision, dataset,
    md5(count(*) over w || ':' || sum(lo) over w || ':' || sum(hi) over w || ':'
        || bit_xor(hash(lo, hi)) over w) as population_key,
    lo, hi
from islands
window w as (partition by model, revision, dataset)
