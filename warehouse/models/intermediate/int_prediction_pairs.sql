-- Predictor -> target pairs with their confusion counts. A predictor is a smaller model of the
-- same scaling ladder (int_units.ladder) at the same revision, or an earlier checkpoint of the same model. Population: the
-- sequences both scored; for a checkpoint predictor only those it had seen (seq_idx < step *
-- sequences_per_step) when var('restrict_checkpoint_population') and both are known.
with p as (
    select * from {{ ref('int_unit_pairs') }}
),
oriented as (
    select dataset, model_a as predictor_model, revision_a as predictor_revision,
           model_b as target_model, revision_b as target_revision,
           seen_limit, n_common_seen as n_population, n_a_seen as n_predicted,
           n_b_seen as n_target, n_both_seen as tp
    from p
    union all
    select dataset, model_b, revision_b, model_a, revision_a,
           seen_limit, n_common_seen, n_b_seen, n_a_seen, n_both_seen
    from p
),
units as (
    select * from {{ ref('int_units') }}
)
select
    o.dataset,
    o.predictor_model,
    o.predictor_revision,
    pu.step as predictor_step,
    o.target_model,
    o.target_revision,
    tu.step as target_step,
    case when pu.model = tu.model then 'earlier_checkpoint' else 'smaller_model' end as predictor_kind,
    pu.family,
    o.seen_limit as population_seq_limit,
    o.n_population,
    o.tp,
    o.n_predicted - o.tp as fp,
    o.n_target - o.tp as fn,
    o.n_population - o.n_predicted - o.n_target + o.tp as tn,
    pu.n_params as predictor_params,
    tu.n_params as target_params,
    pu.tokens_seen as predictor_tokens_seen,
    tu.tokens_seen as target_tokens_seen,
    pu.train_flops as predictor_flops,
    tu.train_flops as target_flops,
    tu.is_final_revision and tu.is_largest_in_family as is_final_target
from oriented as o
join units as pu on pu.model = o.predictor_model and pu.revision = o.predictor_revision and pu.dataset = o.dataset
join units as tu on tu.model = o.target_model and tu.revision = o.target_revision and tu.dataset = o.dataset
where (pu.model = tu.model and pu.step < tu.step)
   or (pu.model <> tu.model and pu.ladder = tu.ladder and pu.revision = tu.revision
       and pu.n_params < tu.n_params)
