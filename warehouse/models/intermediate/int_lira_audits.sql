{{ config(materialized='table') }}
-- Which units each shadow population audits: every dense unit that is not itself a shadow
-- unit and scored the population's dataset. A unit audited by several populations (shadow
-- families on one dataset) feeds membership_inference from one: the population of its own
-- family, else the only one (is_primary); lira_scores keeps them all.
with audited as (
    select e.model, e.revision, u.family, p.family as shadow_family, p.dataset,
           p.n_shadow_units, p.population_fingerprint
    from {{ ref('int_unit_exposure') }} as e
    join {{ ref('int_units') }} as u using (model, revision, dataset)
    join {{ ref('int_unit_roles') }} as r using (model, revision)
    join {{ ref('int_shadow_populations') }} as p on p.dataset = e.dataset
    where r.role is distinct from 'shadow' and not u.is_sparse
)
select
    model,
    revision,
    shadow_family,
    dataset,
    n_shadow_units,
    family = shadow_family or count(*) over (partition by model, revision, dataset) = 1 as is_primary,
    population_fingerprint as lira_fingerprint
from audited
