{# Generic data tests (dbt_utils is not available offline). #}

{% test expression_is_true(model, expression, where=None) %}
select * from {{ model }}
where not coalesce(({{ expression }}), false)
{% if where %} and ({{ where }}) {% endif %}
{% endtest %}

{% test accepted_range(model, column_name, min_value=None, max_value=None) %}
select * from {{ model }}
where {{ column_name }} is not null
  and (false
  {% if min_value is not none %} or {{ column_name }} < {{ min_value }} {% endif %}
  {% if max_value is not none %} or {{ column_name }} > {{ max_value }} {% endif %})
{% endtest %}

{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
