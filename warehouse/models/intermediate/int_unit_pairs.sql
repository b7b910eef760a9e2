{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['model_a', 'revision_a', 'model_b', 'revision_b'],
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
    select model, revision, seq_idx from {{ ref('int_memorized_sequences') }}
),
units as (
    select row_number() over (order by u.model, u.revision) as uid, u.model, u.revision,
           u.is_sparse, coalesce(m.n_memorized, 0) as n_memorized
    from {{ ref('int_units') }} as u
    left join (select model, revision, count(*) as n_memorized from mem group by model, revision) as m
      on m.model = u.model and m.revision = u.revision
),
pairs as (
    select
        a.uid as uid_a, b.uid as uid_b,
        s.model_a, s.revision_a, s.model_b, s.revision_b,
        s.fingerprint_a, s.fingerprint_b, s.population_key_a, s.population_key_b,
        a.n_memorized as n_memorized_a, b.n_memorized as n_memorized_b,
        a.is_sparse or b.is_sparse as any_sparse,
        s.seen_limit
    from {{ ref('int_unit_pair_scope') }} as s
    join units as a on a.model = s.model_a and a.revision = s.revision_a
    join units as b on b.model = s.model_b and b.revision = s.revision_b
    {% if is_incremental() %}
    -- only pairs not stored yet with these inputs (new, changed unit, new scope or settings)
    where not exists (
        select 1 from {{ this }} as t
        where t.model_a = s.model_a and t.revision_a = s.revision_a
          and t.model_b = s.model_b and t.revision_b = s.revision_b
          and t.fingerprint_a = s.fingerprint_a and t.fingerprint_b = s.fingerprint_b
          and t.seen_limit is not distinct from s.seen_limit
          and t.pair_config = (select pair_config from cfg)
    )
    {% endif %}
),
common as (
    select p.model_a, p.revision_a, p.model_b, p.revision_b,
           sum(i.hi - i.lo) as n_common,
           sum(greatest(0, least(i.hi, coalesce(p.seen_limit, i.hi)) - i.lo)) as n_common_seen
    from pairs as p
    join {{ ref('int_population_intersections') }} as i
      on i.population_key_a = p.population_key_a and i.population_key_b = p.population_key_b
    group by all
),
both_memorized as (
    select p.model_a, p.revision_a, p.model_b, p.revision_b,
           count(*) as n_both,
           count(*) filter (where p.seen_limit is null or ma.seq_idx < p.seen_limit) as n_both_seen
    from pairs as p
    join mem as ma on ma.model = p.model_a and ma.revision = p.revision_a
    join mem as mb on mb.model = p.model_b and mb.revision = p.revision_b and mb.seq_idx = ma.seq_idx
    group by all
),
{#- Memorized rows of one side inside the other side's population (and below seen_limit); only
    pairs with a limit or different populations need the rows, the rest use unit counts. -#}
{% for side, other in [('a', 'b'), ('b', 'a')] %}
side_{{ side }} as (
    select p.model_a, p.revision_a, p.model_b, p.revision_b,
           count(*) filter (where p.population_key_a = p.population_key_b or x.seq_idx is not null) as n_in,
           count(*) filter (where (p.population_key_a = p.population_key_b or x.seq_idx is not null)
                              and (p.seen_limit is null or m.seq_idx < p.seen_limit)) as n_in_seen
    from pairs as p
    join mem as m on m.model = p.model_{{ side }} and m.revision = p.revision_{{ side }}
    left join {{ ref('int_memorized_population_membership') }} as x
      on x.model = m.model and x.revision = m.revision and x.seq_idx = m.seq_idx
     and x.population_key = p.population_key_{{ other }}
    where p.seen_limit is not null or p.population_key_a <> p.population_key_b
    group by all
),
{% endfor %}
sample as (
    select u.uid, s.seq_idx, s.x
    from {{ ref('int_pearson_sample') }} as s
    join units as u on u.model = s.model and u.revision = s.revision
),
pearson as (
    select p.model_a, p.revision_a, p.model_b, p.revision_b,
           count(*) as n_pearson, corr(sa.x, sb.x) as pearson
    from pairs as p
    join sample as sa on sa.uid = p.uid_a
    join sample as sb on sb.uid = p.uid_b and sb.seq_idx = sa.seq_idx
    where not p.any_sparse
    group by all
)
select
    p.model_a, p.revision_a, p.model_b, p.revision_b,
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
left join common as c using (model_a, revision_a, model_b, revision_b)
left join both_memorized as bm using (model_a, revision_a, model_b, revision_b)
left join side_a as sa using (model_a, revision_a, model_b, revision_b)
left join side_b as sb using (model_a, revision_a, model_b, revision_b)
left join pearson as pe using (model_a, revision_a, model_b, revision_b)
