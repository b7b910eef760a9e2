{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['model', 'revision', 'dataset'],
    post_hook=["{{ delete_stale_units() }}"]
) }}
-- Each unit's memorized set as a bitmap in 64-sequence blocks (bit i of block b = seq_idx
-- 64 b + i): pairwise counts AND two units' words, so their cost grows with the blocks that
-- hold memorized rows (at most n_scored / 64), not with the memorized rows. With dense labels
-- (half the rows memorized) that is 32x fewer rows to join than the sparse set.
with mem as (
    select model, revision, dataset, unit_fingerprint, seq_idx from {{ ref('int_memorized_sequences') }}
    where {{ unit_scan_filter('model', 'revision', 'dataset') }}
)
select model, revision, dataset, any_value(unit_fingerprint) as unit_fingerprint,
       seq_idx // 64 as block,
       bit_or((1::ubigint) << (seq_idx % 64)::ubigint) as bits
from mem
group by model, revision, dataset, seq_idx // 64
