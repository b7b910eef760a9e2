{#- Fallbacks when no manifest, import option or seed says a model's family or size: guess
    them from a sized label, as `<family>-<size><k|m|b|t>[-suffix]`. `memwh build` lists the
    units that needed a guess (int_units.family_is_guessed / n_params_is_guessed). -#}

{% macro size_suffix_pattern() -%}
'-\d+(\.\d+)?[kmbt]\b'
{%- endmacro %}

{#- pythia-1.4b-deduped -> pythia-deduped, demo-4m -> demo; NULL when the label has no size. -#}
{% macro family_from_label(model) -%}
case when regexp_matches({{ model }}, {{ size_suffix_pattern() }}, 'i')
     then nullif(regexp_replace({{ model }}, {{ size_suffix_pattern() }}, '', 'gi'), '') end
{%- endmacro %}

{#- pythia-1.4b-deduped -> 1400000000, demo-4m -> 4000000; NULL when the label has no size. -#}
{% macro n_params_from_label(model) -%}
cast(round(
    try_cast(regexp_extract({{ model }}, '-(\d+(?:\.\d+)?)[kmbt]\b', 1, 'i') as double)
    * case lower(regexp_extract({{ model }}, '-\d+(?:\.\d+)?([kmbt])\b', 1, 'i'))
        when 'k' then 1e3 when 'm' then 1e6 when 'b' then 1e9 when 't' then 1e12 end
) as bigint)
{%- endmacro %}
