{# Generic data tests (dbt_utils is not available offline).

   Each model's key and per-column rules are one test node apiece (primary_key, column_checks)
   rather than one node per column and rule: dbt spends ~20 ms of fixed work per test node, so
   the ~75 column tests of the old layout cost more than a rebuild after a new unit does.
   A failing test still names the column and rule in its rows. #}

{% test expression_is_true(model, expression, where=None) %}
select * from {{ model }}
where not coalesce(({{ expression }}), false)
{% if where %} and ({{ where }}) {% endif %}
{% endtest %}

{#- Key columns are all non-NULL and unique together. Fails with the offending key values. -#}
{% test primary_key(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n_rows
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1 or {% for c in columns %}{{ c }} is null{% if not loop.last %} or {% endif %}{% endfor %}
{% endtest %}

{#- Per-column rules of one model in one scan:
      not_null: [col, ...]                    the column has no NULL
      ranges: {col: [min, max]}               min <= col <= max, either bound may be null (open);
                                              NULL values pass (as dbt's accepted_range)
      accepted_values: {col: [v1, v2, ...]}   col is one of the values (NULL passes)
    Fails with one row per broken rule: column_name, rule, n_failing. -#}
{% test column_checks(model, not_null=[], ranges={}, accepted_values={}) %}
{%- set checks = [] -%}
{%- for c in not_null -%}
  {%- do checks.append((c, 'not_null', c ~ ' is null')) -%}
{%- endfor -%}
{%- for c, bounds in ranges.items() -%}
  {%- set lo, hi = bounds[0], bounds[1] -%}
  {%- set conds = [] -%}
  {%- if lo is not none %}{% do conds.append(c ~ ' < ' ~ lo) %}{% endif -%}
  {%- if hi is not none %}{% do conds.append(c ~ ' > ' ~ hi) %}{% endif -%}
  {%- do checks.append((c, 'range [' ~ lo ~ ', ' ~ hi ~ ']', conds | join(' or ') or 'false')) -%}
{%- endfor -%}
{%- for c, values in accepted_values.items() -%}
  {%- set literals = [] -%}
  {%- for v in values -%}
    {%- if v is string %}{% do literals.append("'" ~ (v | replace("'", "''")) ~ "'") %}
    {%- elif v is sameas true or v is sameas false %}{% do literals.append(v | string | lower) %}
    {%- else %}{% do literals.append(v | string) %}{% endif -%}
  {%- endfor -%}
  {%- do checks.append((c, 'accepted_values', c ~ ' not in (' ~ literals | join(', ') ~ ')')) -%}
{%- endfor -%}
{%- if not checks -%}
  {{ exceptions.raise_compiler_error("column_checks on " ~ model ~ ": give not_null, ranges or accepted_values") }}
{%- endif -%}
with counts as (
    select
    {%- for col, rule, cond in checks %}
        count(*) filter (where {{ cond }}) as c{{ loop.index }}{% if not loop.last %},{% endif %}
    {%- endfor %}
    from {{ model }}
)
select column_name, rule, n_failing
from (
    {%- for col, rule, cond in checks %}
    select '{{ col }}' as column_name, '{{ rule }}' as rule, c{{ loop.index }} as n_failing from counts
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
)
where n_failing > 0
{% endtest %}
