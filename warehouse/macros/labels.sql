{# The memorization label, in one place so every model agrees. #}

{% macro label_config() -%}
{{ var('label_definition', 'prefix_match') }}:{{ var('memorized_min_tokens', 32) }}:{{ var('score_threshold', 1.0) }}
{%- endmacro %}

{% macro is_memorized(pml='prefix_match_len', score='memorization_score', cont_len='cont_len') -%}
{%- set definition = var('label_definition', 'prefix_match') -%}
{%- if definition == 'prefix_match' -%}
    {#- rows without prefix_match_len (pythia-csv imports) fall back to score >= 1 -#}
    coalesce({{ pml }} >= {{ var('memorized_min_tokens', 32) }}, {{ score }} >= 1.0, false)
{%- elif definition == 'score' -%}
    {#- fast-mode rows have no score: greedy decoding guarantees score >= prefix_match_len / cont_len,
        exact at threshold 1 -#}
    coalesce({{ score }} >= {{ var('score_threshold', 1.0) }},
             {{ pml }}::double / nullif({{ cont_len }}, 0) >= {{ var('score_threshold', 1.0) }}, false)
{%- else -%}
    {{ exceptions.raise_compiler_error("var label_definition must be 'prefix_match' or 'score', got '" ~ definition ~ "'") }}
{%- endif -%}
{%- endmacro %}

{% macro can_label(cont_len='cont_len') -%}
{#- Whether rows scored with this cont_len can be labelled at all: under the prefix_match rule
    a continuation shorter than memorized_min_tokens can never match that many tokens, so its
    rows would all read "not memorized". Such units are left out of every model (int_units,
    int_scores_labeled, memorization_by_context) and `memwh build` counts them in its summary
    (warehouse/build.py unlabelable_units). -#}
{%- if var('label_definition', 'prefix_match') == 'prefix_match' -%}
    coalesce({{ cont_len }} >= {{ var('memorized_min_tokens', 32) }}, true)
{%- else -%}
    true
{%- endif -%}
{%- endmacro %}

{% macro wilson_bound(successes, n, sign) -%}
{#- Wilson score interval, 95% (z = 1.959963984540054); NULL when n = 0. Clamped to [0, 1]:
    at k = 0 or k = n the exact bound is 0 or 1, which floating point misses by ~1e-17. -#}
case when {{ n }} > 0 then {{ 'greatest(0.0, ' if sign == '-' else 'least(1.0, ' }}
    (({{ successes }})::double / ({{ n }})
      + 3.841458820694124 / (2.0 * ({{ n }}))
      {{ sign }} 1.959963984540054 * sqrt(
            ({{ successes }})::double / ({{ n }}) * (1 - ({{ successes }})::double / ({{ n }})) / ({{ n }})
            + 3.841458820694124 / (4.0 * ({{ n }}) * ({{ n }}))))
    / (1 + 3.841458820694124 / ({{ n }})))
end
{%- endmacro %}

{% macro bits_below(block, limit) -%}
{#- UBIGINT mask of the bits of 64-sequence block `block` whose seq_idx < `limit` (all bits
    when limit is NULL): full blocks below the limit, none above, a partial word at it. -#}
case when {{ limit }} is null or {{ block }} < {{ limit }} // 64 then 18446744073709551615::ubigint
     when {{ block }} > {{ limit }} // 64 then 0::ubigint
     else ((1::ubigint << ({{ limit }} % 64)::ubigint) - 1::ubigint) end
{%- endmacro %}
