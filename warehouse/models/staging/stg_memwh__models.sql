-- Model registry: what run manifests say (incl. the demo suite metadata copied into them),
-- completed by the Pythia seed for models whose manifests lack sizes or schedule.
with from_runs as (
    select
        model,
        max(family) as family,
        max(n_params) as n_params,
        max(non_embedding_params) as non_embedding_params,
        max(tokens_per_step) as tokens_per_step,
        max(sequences_per_step) as sequences_per_step
    from {{ ref('stg_memwh__runs') }}
    group by model
),
seed as (
    select * from {{ ref('pythia_models') }}
)
select
    coalesce(r.model, s.model) as model,
    coalesce(r.family, s.family) as family,
    coalesce(r.n_params, s.n_params) as n_params,
    coalesce(r.non_embedding_params, s.non_embedding_params) as non_embedding_params,
    coalesce(r.tokens_per_step, s.tokens_per_step) as tokens_per_step,
    coalesce(r.sequences_per_step, s.sequences_per_step) as sequences_per_step,
    case
        when r.model is not null and s.model is not null then 'manifest+seed'
        when r.model is not null then 'manifest'
        else 'seed'
    end as registry_source
from from_runs as r
-- A hub id's default label keeps its organisation (EleutherAI/pythia-160m ->
-- EleutherAI--pythia-160m); the seed lists Pythia under its plain names.
full outer join seed as s on r.model = s.model or r.model = 'EleutherAI--' || s.model
