{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['dataset', 'model_a', 'revision_a', 'model_b', 'revision_b'],
    post_hook=["{{ delete_stale_pairs() }}"]
) }}
-- Counts for the unit pairs the marts use (int_unit_pair_scope, a < b) over their common
-- population, computed from the sparse memorized sets and population islands, never from a
-- dense row join:
--   n_common / n_a / n_b / n_both, and the same restricted to seq_idx < seen_limit (set for two
--   checkpoints of one model: the sequences the earlier one had seen), plus the Pearson
--   correlation of prefix_match_len over a deterministic sample (exact when the largest unit has
--   <= var('pearson_max_sequences') rows). Incremental: only pairs missing from the table or
--   whose inputs (fingerprints, seen_limit, pair_config) changed; the post-hook drops the rest.
with cfg as (
    select pair_config, pearson_modulus from {{ ref('int_pair_config') }}
),
mem as (
    select model, revision, dataset, seq_idx from {{ ref('int_memorized_sequences') }}
),
units as (
    select row_number() over (order by u.model, u.revision, u.dataset) as uid, u.model, u.revision, u.dataset,
           u.is_sparse, coalesce(m.n_memorized, 0) as n_memorized
    from {{ ref('int_units') }} as u
    left join (select model, revision, dataset, sum(bit_count(bits))::bigint as n_memorized
               from {{ ref('int_memorized_blocks') }} group by model, revision, dataset) as m
      on m.model = u.model and m.revision = u.revision and m.dataset = u.dataset
),
blocks as (
    select u.uid, b.block, b.bits
    from {{ ref('int_memorized_blocks') }} as b
    join units as u on u.model = b.model and u.revision = b.revision and u.dataset = b.dataset
),
pairs as (
    select
        a.uid as uid_a, b.uid as uid_b,
        s.dataset, s.model_a, s.revision_a, s.model_b, s.revision_b,
        s.fingerprint_a, s.fingerprint_b, s.population_key_a, s.population_key_b,
        a.n_memorized as n_memorized_a, b.n_memorized as n_memorized_b,
        a.is_sparse or b.is_sparse as any_sparse,
        s.seen_limit
    from {{ ref('int_unit_pair_scope') }} as s
    join units as a on a.model = s.model_a and a.revision = s.revision_a and a.dataset = s.dataset
    join units as b on b.model = s.model_b and b.revision = s.revision_b and b.dataset = s.dataset
    {% if is_incremental() %}
    -- only pairs not stored yet with these inputs (new, changed unit, new scope or settings)
    where not exists (
        select 1 from {{ this }} as t
        where t.dataset = s.dataset and t.model_a = s.model_a and t.revision_a = s.revision_a
          and t.model_b = s.model_b and t.revision_b = s.revision_b
          and t.fingerprint_a = s.fingerprint_a and t.fingerprint_b = s.fingerprint_b
          and t.seen_limit is not distinct from s.seen_limit
          and t.pair_config = (select pair_config from cfg)
    )
    {% endif %}
),
common as (
    select p.uid_a, p.uid_b,
           sum(i.hi - i.lo) as n_common,
           sum(greatest(0, least(i.hi, coalesce(p.seen_limit, i.hi)) - i.lo)) as n_common_seen
    from pairs as p
    join {{ ref('int_population_intersections') }} as i
      on i.population_key_a = p.population_key_a and i.population_key_b = p.population_key_b
    group by all
),
{#- Sequences memorized by both were scored by both, so no population check: AND the two
    bitmaps block by block (the block holding seen_limit masked to the bits below it). -#}
both_memorized as (
    select p.uid_a, p.uid_b,
           sum(bit_count(ba.bits & bb.bits))::bigint as n_both,
           sum(bit_count(ba.bits & bb.bits & {{ bits_below('ba.block', 'p.seen_limit') }}))::bigint as n_both_seen
    from pairs as p
    join blocks as ba on ba.uid = p.uid_a
    join blocks as bb on bb.uid = p.uid_b and bb.block = ba.block
    group by all
),
{#- Memorized sequences of one side inside the other side's population (and below seen_limit);
    only pairs with a limit or different populations need them, the rest use unit counts.
    One population: the side's own bitmap below the limit. Different populations: its
    memorized rows that lie inside the other's islands (int_memorized_population_membership). -#}
{% for side, other in [('a', 'b'), ('b', 'a')] %}
side_{{ side }} as (
    select p.uid_a, p.uid_b,
           sum(bit_count(b.bits))::bigint as n_in,
           sum(bit_count(b.bits & {{ bits_below('b.block', 'p.seen_limit') }}))::bigint as n_in_seen
    from pairs as p
    join blocks as b on b.uid = p.uid_{{ side }}
    where p.seen_limit is not null and p.population_key_a = p.population_key_b
    group by all
    union all
    select p.uid_a, p.uid_b,
           count(x.seq_idx) as n_in,
           count(x.seq_idx) filter (where p.seen_limit is null or m.seq_idx < p.seen_limit) as n_in_seen
    from pairs as p
    join mem as m on m.model = p.model_{{ side }} and m.revision = p.revision_{{ side }} and m.dataset = p.dataset
    left join {{ ref('int_memorized_population_membership') }} as x
      on x.model = m.model and x.revision = m.revision and x.dataset = m.dataset and x.seq_idx = m.seq_idx
     and x.population_key = p.population_key_{{ other }}
    where p.population_key_a <> p.population_key_b
    group by all
),
{% endfor %}
sample as (
    select u.uid, s.n, s.sx, s.sxx, s.xs, hash(s.seqs) as seqs_hash
    from {{ ref('int_pearson_sample') }} as s
    join units as u on u.model = s.model and u.revision = s.revision and u.dataset = s.dataset
),
{#- Pearson of prefix_match_len over the common sampled sequences. Both units sampled on the
    same sequences (one population, no NULLs): from n, the sums and one dot product, computed
    in the join's projection (no per-pair copy of the vectors is kept). Otherwise the two
    samples are unnested and joined on seq_idx. Which pairs are aligned is decided first, from
    the samples' sizes and hashes only: were the vectors joined on (n, seqs_hash) directly,
    DuckDB could join every unit's sample with every other's before meeting the pairs (1,152
    units sampled alike: 1.3M dot products of 8,192 values; an incremental build with no changed
    pair ran for minutes). -#}
aligned as materialized (
    select p.uid_a, p.uid_b,
           p.population_key_a = p.population_key_b and sb.n = sa.n and sb.seqs_hash = sa.seqs_hash
               as is_aligned
    from pairs as p
    join sample as sa on sa.uid = p.uid_a
    join sample as sb on sb.uid = p.uid_b
    where not p.any_sparse
),
pearson_aligned as (
    select q.uid_a, q.uid_b, sa.n, sa.sx as sx, sb.sx as sy, sa.sxx as sxx, sb.sxx as syy,
           list_dot_product(sa.xs::double[], sb.xs::double[]) as sxy
    from aligned as q
    join sample as sa on sa.uid = q.uid_a
    join sample as sb on sb.uid = q.uid_b
    where q.is_aligned
),
unaligned as (
    select uid_a, uid_b from aligned where not is_aligned
),
sample_rows as (
    select u.uid, unnest(s.seqs) as seq_idx, unnest(s.xs)::double as x
    from {{ ref('int_pearson_sample') }} as s
    join units as u on u.model = s.model and u.revision = s.revision and u.dataset = s.dataset
    where u.uid in (select uid_a from unaligned union select uid_b from unaligned)
),
pearson_joined as (
    select q.uid_a, q.uid_b, count(*) as n, sum(a.x) as sx, sum(b.x) as sy,
           sum(a.x * a.x) as sxx, sum(b.x * b.x) as syy, sum(a.x * b.x) as sxy
    from unaligned as q
    join sample_rows as a on a.uid = q.uid_a
    join sample_rows as b on b.uid = q.uid_b and b.seq_idx = a.seq_idx
    group by all
),
pearson as (
    select uid_a, uid_b, n as n_pearson,
           (n * sxy - sx * sy) / sqrt(nullif((n * sxx - sx * sx) * (n * syy - sy * sy), 0)) as pearson
    from (select * from pearson_aligned union all by name select * from pearson_joined)
)
select
    p.dataset, p.model_a, p.revision_a, p.model_b, p.revision_b,
    p.fingerprint_a, p.fingerprint_b,
    (select pair_config from cfg) as pair_config,
    p.population_key_a, p.population_key_b, p.seen_limit,
    coalesce(c.n_common, 0) as n_common,
    coalesce(sa.n_in, p.n_memorized_a) as n_a,
    coalesce(sb.n_in, p.n_memorized_b) as n_b,
    coalesce(bm.n_both, 0) as n_both,
    coalesce(c.n_common_seen, 0) as n_common_seen,
    coalesce(sa.n_in_seen, p.n_memorized_a) as n_a_seen,
    coalesce(sb.n_in_seen, p.n_memorized_b) as n_b_seen,
    coalesce(bm.n_both_seen, 0) as n_both_seen,
    coalesce(pe.n_pearson, 0) as n_pearson,
    case when isnan(pe.pearson) then null else pe.pearson end as pearson_prefix_match_len
from pairs as p
left join common as c using (uid_a, uid_b)
left join both_memorized as bm using (uid_a, uid_b)
left join side_a as sa using (uid_a, uid_b)
left join side_b as sb using (uid_a, uid_b)
left join pearson as pe using (uid_a, uid_b)
