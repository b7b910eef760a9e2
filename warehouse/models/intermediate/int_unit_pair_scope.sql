-- The unit pairs the marts use, never all pairs (Pythia's grid has 3M of those), both units
-- always of one dataset and extraction setting (int_units.setting_key: dataset, prompt_len, cont_len, mode
-- class, EOS rule):
--   across_sizes: two models of one scaling ladder at the same revision (int_units.ladder:
--                 family and role class; cross-scale agreement, smaller model -> larger);
--   checkpoints:  two revisions of one model, every earlier -> later pair when
--                 var('checkpoint_pairs') = 'all_later' (default), or only pairs with the
--                 model's final revision when 'final_only' (the paper's "-> final").
-- Each pair once (a < b), with what its stored counts depend on, so int_unit_pairs computes
-- only pairs that are missing or whose inputs changed, and drops the rest.
{%- set scope = var('checkpoint_pairs', 'all_later') %}
{%- if scope not in ['all_later', 'final_only'] %}
{{ exceptions.raise_compiler_error("var checkpoint_pairs must be 'all_later' or 'final_only', got '" ~ scope ~ "'") }}
{%- endif %}
with units as (
    select model, revision, dataset, ladder, setting_key, step, sequences_per_step, is_final_revision,
           unit_fingerprint, population_key
    from {{ ref('int_units') }}
)
select
    a.dataset, a.model as model_a, a.revision as revision_a, b.model as model_b, b.revision as revision_b,
    case when a.model = b.model then 'checkpoints' else 'across_sizes' end as pair_kind,
    a.unit_fingerprint as fingerprint_a, b.unit_fingerprint as fingerprint_b,
    a.population_key as population_key_a, b.population_key as population_key_b,
    case when {{ var('restrict_checkpoint_population', true) }} and a.model = b.model
              and a.step is not null and b.step is not null and a.sequences_per_step is not null
         then least(a.step, b.step) * a.sequences_per_step end as seen_limit
from units as a
join units as b
  on a.dataset = b.dataset and a.setting_key is not distinct from b.setting_key
 and ((a.model = b.model and a.revision < b.revision
      {%- if scope == 'final_only' %} and (a.is_final_revision or b.is_final_revision){% endif %})
  or (a.model < b.model and a.ladder = b.ladder and a.revision = b.revision))
