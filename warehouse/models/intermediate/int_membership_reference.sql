-- The reference unit of the calibrated loss signal (mimir's `ref` attack, STUDIES §2):
-- var membership_reference_unit = 'model@revision', a checkpoint that did not train on the data
-- (its unit on each dataset serves the units of that dataset).
-- reference_config changes when the var or the reference unit's rows do, so membership rows
-- are recomputed. Zero rows of reference when the var is unset.
{%- set ref_unit = var('membership_reference_unit', none) %}
select
    {% if ref_unit %}
    u.model as reference_model,
    u.revision as reference_revision,
    '{{ ref_unit }}|' || coalesce(string_agg(u.unit_fingerprint, ',' order by u.dataset), 'missing') as reference_config
    {% else %}
    null::varchar as reference_model,
    null::varchar as reference_revision,
    'none' as reference_config
    {% endif %}
{% if ref_unit %}
from (select 1) as one
left join {{ ref('int_units') }} as u on u.model || '@' || u.revision = '{{ ref_unit }}'
group by all
{% endif %}
