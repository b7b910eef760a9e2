-- How well a smaller model or an earlier checkpoint predicts a target's memorized set:
-- precision = |P and T| / |P|, recall = |P and T| / |T| (P = predictor's memorized set, T = the
-- target's, over the pair's population), Wilson 95% intervals, and compute C = 6 N D.
select
    dataset, predictor_model, predictor_revision, predictor_step,
    target_model, target_revision, target_step,
    predictor_kind, family, population_seq_limit,
    n_population::bigint as n_population, tp, fp, fn, tn::bigint as tn,
    tp::double / nullif(tp + fp, 0) as precision,
    tp::double / nullif(tp + fn, 0) as recall,
    2.0 * tp / nullif(2 * tp + fp + fn, 0) as f1,
    {{ wilson_bound('tp', 'tp + fp', '-') }} as precision_lo,
    {{ wilson_bound('tp', 'tp + fp', '+') }} as precision_hi,
    {{ wilson_bound('tp', 'tp + fn', '-') }} as recall_lo,
    {{ wilson_bound('tp', 'tp + fn', '+') }} as recall_hi,
    predictor_params, target_params,
    predictor_flops, target_flops,
    -- An earlier checkpoint of the same model has the same N, so its compute fraction is its
    -- fraction of training even when the parameter count is unknown (imported results).
    coalesce(
        predictor_flops / nullif(target_flops, 0),
        case when predictor_kind = 'earlier_checkpoint' then
            coalesce(predictor_tokens_seen::double / nullif(target_tokens_seen, 0),
                     predictor_step::double / nullif(target_step, 0))
        end
    ) as compute_fraction,
    coalesce(predictor_tokens_seen::double / nullif(target_tokens_seen, 0),
             predictor_step::double / nullif(target_step, 0)) as training_fraction,
    is_final_target
from {{ ref('int_prediction_pairs') }}
