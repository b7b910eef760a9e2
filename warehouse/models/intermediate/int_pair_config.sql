-- Settings every stored pair was computed with; a change (label vars, checkpoint restriction,
-- Pearson sample modulus) makes int_unit_pairs recompute all pairs.
with m as (
    select greatest(1, ceil(coalesce(max(n_scored), 0) / {{ var('pearson_max_sequences', 10000) }}))::bigint as pearson_modulus
    from {{ ref('int_units') }}
)
select
    '{{ label_config() }}|{{ var("restrict_checkpoint_population", true) }}|' || pearson_modulus as pair_config,
    pearson_modulus
from m
