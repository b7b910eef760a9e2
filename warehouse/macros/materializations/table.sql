{#- SQL tables in one statement, for the same reason as view.sql: dbt-duckdb's table
    materialization creates `x__dbt_tmp`, renames the old table to a backup, renames the new one in
    and drops the backup after commit. CREATE OR REPLACE TABLE inside the model's transaction is
    just as atomic for readers (they see the old table until COMMIT). It covers plain SQL tables,
    all this project has; anything else is refused at build time rather than built differently. -#}
{%- materialization table, adapter='duckdb' -%}

  {%- set existing_relation = load_cached_relation(this) -%}
  {%- if config.get('partitioned_by') or config.get('sorted_by')
        or config.get('contract').enforced -%}
    {{ exceptions.raise_compiler_error(model.name ~ ": partitioned, sorted or contracted tables need
       dbt-duckdb's table materialization; remove warehouse/macros/materializations/table.sql") }}
  {%- endif -%}

  {%- set target_relation = this.incorporate(type='table') -%}
  {% set grant_config = config.get('grants') %}

  {{ run_hooks(pre_hooks, inside_transaction=False) }}
  -- `BEGIN` happens here:
  {{ run_hooks(pre_hooks, inside_transaction=True) }}

  {% call statement('main') -%}
    {#- A view of the same name is dropped in the same statement, inside the transaction. -#}
    {% if existing_relation is not none and not existing_relation.is_table -%}
    drop {{ existing_relation.type }} if exists {{ existing_relation }} cascade;
    {%- endif %}
    {%- set sql_header = config.get('sql_header', none) -%}
    {{ sql_header if sql_header is not none }}
    create or replace table {{ target_relation }} as (
      {{ compiled_code }}
    );
  {%- endcall %}

  {% do create_indexes(target_relation) %}
  {{ run_hooks(post_hooks, inside_transaction=True) }}

  {% set should_revoke = should_revoke(existing_relation, full_refresh_mode=True) %}
  {% do apply_grants(target_relation, grant_config, should_revoke=should_revoke) %}
  {% do persist_docs(target_relation, model) %}

  -- `COMMIT` happens here
  {{ adapter.commit() }}
  {{ run_hooks(post_hooks, inside_transaction=False) }}

  {{ return({'relations': [target_relation]}) }}

{%- endmaterialization -%}
