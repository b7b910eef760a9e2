{# Per-unit incremental models store the unit_fingerprint (run ids + label settings) they were
   computed from. Only units whose fingerprint is not stored yet are (re)computed; rows of units
   that changed or disappeared are deleted by the post-hook. #}

{% macro changed_units() -%}
    select u.model, u.revision, u.dataset, u.unit_fingerprint
    from {{ ref('int_units') }} as u
    {% if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as t
        where t.model = u.model and t.revision = u.revision and t.dataset = u.dataset
          and t.unit_fingerprint = u.unit_fingerprint
    )
    {% endif %}
{%- endmacro %}

{% macro delete_stale_units() -%}
    delete from {{ this }} as t
    where not exists (
        select 1 from {{ ref('int_units') }} as u
        where u.model = t.model and u.revision = t.revision and u.dataset = t.dataset
          and u.unit_fingerprint = t.unit_fingerprint
    )
{%- endmacro %}

{% macro delete_stale_pairs() -%}
    {#- pairs out of scope (units gone, new final revision, scope var) or computed from other inputs -#}
    delete from {{ this }} as t
    where t.pair_config <> (select max(pair_config) from {{ ref('int_pair_config') }})
       or not exists (select 1 from {{ ref('int_unit_pair_scope') }} as s
                      where s.dataset = t.dataset and s.model_a = t.model_a and s.revision_a = t.revision_a
                        and s.model_b = t.model_b and s.revision_b = t.revision_b
                        and s.fingerprint_a = t.fingerprint_a and s.fingerprint_b = t.fingerprint_b
                        and s.seen_limit is not distinct from t.seen_limit)
{%- endmacro %}

{% macro unit_scan_filter(model_col, revision_col, dataset_col, units_query=none) -%}
{#- On incremental runs, the changed units (or the (model, revision, dataset) rows of
    `units_query`: the profiles' per-cell and per-model units) as literal predicates: DuckDB
    pushes them into the raw.scores view and skips other units' row groups (a join/semi-join
    filter would scan all). `true` on a full build. -#}
{%- if is_incremental() -%}
    {{ units_scan_filter(model_col, revision_col, dataset_col, changed_units() if units_query is none else units_query) }}
{%- else -%}
    true
{%- endif -%}
{%- endmacro %}

{% macro units_scan_filter(model_col, revision_col, dataset_col, units_query) -%}
{#- The (model, revision, dataset) rows of `units_query` (its first three columns) as literal predicates on a score scan, so DuckDB
    skips other units' row groups (a join/semi-join filter would scan, and may materialize, all
    rows); `false` when it lists none. -#}
{%- if execute -%}
    {%- set res = run_query("select distinct * from (" ~ units_query ~ ")") -%}
    {%- if res.rows | length == 0 -%}
    false
    {%- elif res.rows | length > 64 -%}
    {#- many units (new label vars, a large ingest): a predicate list this long costs more per
        row than it saves; scan everything as a full refresh would (the model's own join on the
        units still restricts the rows) -#}
    true
    {%- else -%}
    ({%- for r in res.rows %}({{ model_col }} = '{{ r[0] | replace("'", "''") }}' and {{ revision_col }} = '{{ r[1] | replace("'", "''") }}' and {{ dataset_col }} = '{{ r[2] | replace("'", "''") }}'){% if not loop.last %} or {% endif %}{% endfor -%})
    {%- endif -%}
{%- else -%}
    true
{%- endif -%}
{%- endmacro %}
