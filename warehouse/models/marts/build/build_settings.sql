{{ config(materialized='table') }}
-- The vars this build ran with (one row each), so every mart can be read with the label
-- definition that made it: the report's captions and `memwh tables` quote it, and a later
-- plain `memwh build` warns when it would change it (warehouse/build.py).
{%- set names = ['label_definition', 'memorized_min_tokens', 'score_threshold',
                 'restrict_checkpoint_population', 'pearson_max_sequences', 'score_bins'] %}
{% for name in names %}
select '{{ name }}' as name, '{{ var(name) }}' as value, current_timestamp as built_at
{% if not loop.last %}union all{% endif %}
{%- endfor %}
