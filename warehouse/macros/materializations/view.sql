{#- Views in one statement. dbt's default view materialization builds `x__dbt_tmp`, renames the
    old view to a backup, renames the new one in and drops the backup: four DDL round trips per
    view on every build. DuckDB's CREATE OR REPLACE VIEW is transactional, so the swap is atomic
    by itself, and a no-op build no longer pays ~30 ms of DDL per staging/intermediate view. -#}
{%- materialization view, adapter='duckdb' -%}

  {%- if config.get('contract').enforced -%}
    {{ exceptions.raise_compiler_error(model.name ~ ": contracted views need dbt-duckdb's view
       materialization; remove warehouse/macros/materializations/view.sql") }}
  {%- endif -%}
  {%- set existing_relation = load_cached_relation(this) -%}
  {%- set target_relation = this.incorporate(type='view') -%}
  {% set grant_config = config.get('grants') %}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  -- `BEGIN` happens here:
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {% call statement('main') -%}
    {#- A table of the same name (the model was a table before) cannot be replaced by a view:
        drop it in the same statement, so it is inside the transaction too. -#}
    {% if existing_relation is not none and not existing_relation.is_view -%}
    drop {{ existing_relation.type }} if exists {{ existing_relation }} cascade;
    {%- endif %}
    {{ duckdb__create_or_replace_view_as(target_relation, sql) }}
  {%- endcall %}

  {% set should_revoke = should_revoke(existing_relation, full_refresh_mode=True) %}
  {% do apply_grants(target_relation, grant_config, should_revoke=should_revoke) %}
  {% do persist_docs(target_relation, model) %}

  {{ run_hooks(post_hooks, inside_transaction=True) }}
  {{ adapter.commit() }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({'relations': [target_relation]}) }}

{%- endmaterialization -%}

{% macro duckdb__create_or_replace_view_as(relation, sql) -%}
  {%- set sql_header = config.get('sql_header', none) -%}
  {{ sql_header if sql_header is not none }}
  create or replace view {{ relation }} as (
    {{ sql }}
  );
{%- endmacro %}
