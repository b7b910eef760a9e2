{# Causal memorisation profiles (STUDIES §4): which outcomes, which settings, which cells.

   A cell is (model, outcome, base_step = c_{g-1}, next_step = c_g, checkpoint_step = c): the
   cohort trained in [c_{g-1}, c_g) compared with the never-trained controls between the base
   checkpoint and checkpoint c. It reads only the rows of the base and checkpoint units (the
   cohort boundary next_step is just a number), so its fingerprint is theirs plus the settings:
   adding a checkpoint leaves every cell that does not involve it untouched. #}

{% macro profile_outcomes() -%}
{#- var profile_outcomes: one signal name or a list of them (STUDIES §2), default loss. -#}
{%- set allowed = ['loss', 'min_k_logprob', 'zlib_ratio', 'tf_token_accuracy', 'prefix_match_len', 'memorization_score'] -%}
{%- set value = var('profile_outcomes', ['loss']) -%}
{%- set outcomes = [value] if value is string else value -%}
{%- if not outcomes -%}
  {{ exceptions.raise_compiler_error("var profile_outcomes is empty; give one or more of " ~ allowed | join(', ')) }}
{%- endif -%}
{%- for o in outcomes -%}
  {%- if o not in allowed -%}
    {{ exceptions.raise_compiler_error("var profile_outcomes: unknown signal '" ~ o ~ "'; use one or more of " ~ allowed | join(', ')) }}
  {%- endif -%}
{%- endfor -%}
{{ return(outcomes | unique | list) }}
{%- endmacro %}

{% macro profile_config() -%}
{#- what a cell's numbers depend on besides its two units' rows and exposure -#}
exclude_repeated={{ var('profile_exclude_repeated', true) }}
{%- endmacro %}

{% macro profile_outcomes_relation() -%}
(select unnest([{% for o in profile_outcomes() %}'{{ o }}'{% if not loop.last %}, {% endif %}{% endfor %}]) as outcome)
{%- endmacro %}

{% macro profile_outcome_value(alias, outcome_col) -%}
{#- the value of signal `outcome_col` in the score row `alias` -#}
case {{ outcome_col }}{% for o in profile_outcomes() %} when '{{ o }}' then {{ alias }}.{{ o }}::double{% endfor %} end
{%- endmacro %}

{% macro profile_cells_wanted() -%}
{#- Every cell of every model's current checkpoints, with the fingerprint it must be computed
    from; the base period itself (c = c_{g-1}, identically 0) is not a cell. -#}
with ck as (select * from {{ ref('int_profile_checkpoints') }}),
outcomes as {{ profile_outcomes_relation() }}
select b.model, b.dataset, o.outcome, b.step as base_step, n.step as next_step, c.step as checkpoint_step,
       b.revision as base_revision, c.revision as checkpoint_revision,
       md5(b.membership_fingerprint || '|' || c.membership_fingerprint || '|{{ profile_config() }}') as cell_fingerprint
from ck as b
join ck as n on n.model = b.model and n.dataset = b.dataset and n.checkpoint_index = b.checkpoint_index + 1
join ck as c on c.model = b.model and c.dataset = b.dataset and c.checkpoint_index <> b.checkpoint_index
cross join outcomes as o
{%- endmacro %}

{% macro same_profile_cell(t, w) -%}
{#- stored cell `t` is wanted cell `w`, computed from the same inputs -#}
{{ t }}.model = {{ w }}.model and {{ t }}.dataset = {{ w }}.dataset and {{ t }}.outcome = {{ w }}.outcome
and {{ t }}.base_step = {{ w }}.base_step and {{ t }}.next_step = {{ w }}.next_step
and {{ t }}.checkpoint_step = {{ w }}.checkpoint_step
and {{ t }}.cell_fingerprint = {{ w }}.cell_fingerprint
{%- endmacro %}

{% macro profile_cells_todo() -%}
{#- The wanted cells not stored yet with the same fingerprint (all of them on a full build). -#}
select w.* from ({{ profile_cells_wanted() }}) as w
{% if is_incremental() %}
where not exists (
    select 1 from {{ this }} as t
    where {{ same_profile_cell('t', 'w') }}
)
{% endif %}
{%- endmacro %}

{% macro delete_stale_profile_cells() -%}
delete from {{ this }} as t
where not exists (
    select 1 from ({{ profile_cells_wanted() }}) as w
    where {{ same_profile_cell('t', 'w') }}
)
{%- endmacro %}

{% macro profile_cells_todo_units() -%}
select model, base_revision, dataset from ({{ profile_cells_todo() }})
union select model, checkpoint_revision, dataset from ({{ profile_cells_todo() }})
{%- endmacro %}

{% macro changed_profile_units() -%}
{#- Per-unit models of the profiles key on the membership fingerprint (rows, labels and exposure)
    plus the profile settings and outcomes. -#}
    select u.model, u.revision, u.dataset, u.step,
           md5(u.membership_fingerprint || '|{{ profile_config() }}|{{ profile_outcomes() | join(",") }}') as profile_fingerprint
    from {{ ref('int_profile_checkpoints') }} as u
    {% if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as t
        where t.model = u.model and t.revision = u.revision and t.dataset = u.dataset
          and t.profile_fingerprint = md5(u.membership_fingerprint || '|{{ profile_config() }}|{{ profile_outcomes() | join(",") }}')
    )
    {% endif %}
{%- endmacro %}

{% macro delete_stale_profile_units() -%}
    delete from {{ this }} as t
    where not exists (
        select 1 from {{ ref('int_profile_checkpoints') }} as u
        where u.model = t.model and u.revision = t.revision and u.dataset = t.dataset
          and t.profile_fingerprint = md5(u.membership_fingerprint || '|{{ profile_config() }}|{{ profile_outcomes() | join(",") }}')
    )
{%- endmacro %}

{% macro history_units() -%}
{#- The checkpoints a sequence's memorization history spans: units with a step and dense rows. -#}
select e.model, e.revision, e.dataset, e.step, e.membership_fingerprint
from {{ ref('int_unit_exposure') }} as e
join {{ ref('int_units') }} as u on u.model = e.model and u.revision = e.revision and u.dataset = e.dataset
where e.step is not null and not u.is_sparse
{%- endmacro %}

{% macro history_models() -%}
select model, dataset, max(step) as last_step,
       md5(string_agg(revision || ':' || membership_fingerprint, ',' order by revision)) as history_fingerprint
from ({{ history_units() }}) as h
group by model, dataset
{%- endmacro %}

{% macro history_models_changed() -%}
select * from ({{ history_models() }}) as m
{% if is_incremental() %}
where not exists (select 1 from {{ this }} as t
                  where t.model = m.model and t.dataset = m.dataset and t.history_fingerprint = m.history_fingerprint)
{% endif %}
{%- endmacro %}

{% macro delete_stale_history() -%}
delete from {{ this }} as t
where not exists (select 1 from ({{ history_models() }}) as m
                  where m.model = t.model and m.dataset = t.dataset and m.history_fingerprint = t.history_fingerprint)
{%- endmacro %}
