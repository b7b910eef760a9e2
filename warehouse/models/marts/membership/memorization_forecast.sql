-- Memorization forecasting (STUDIES §3; the paper's future work, Dentan et al.): how well a
-- per-sequence signal of a predictor unit (a smaller model, or an earlier checkpoint) ranks the
-- sequences the target unit memorized, over the same pairs and populations as
-- prediction_precision_recall. The paper's binary predictor is one point of the
-- prefix_match_len curve (signal_curves.is_binary_predictor).
select
    f.dataset,
    f.predictor_model,
    f.predictor_revision,
    p.predictor_step,
    f.target_model,
    f.target_revision,
    p.target_step,
    p.predictor_kind,
    f.signal,
    f.n_population,
    f.n_positive,
    f.roc_auc,
    f.roc_auc_lo,
    f.roc_auc_hi,
    f.tpr_at_fpr_0001,
    f.tpr_at_fpr_001,
    f.tpr_at_fpr_01,
    f.average_precision,
    f.n_positive::double / f.n_population as base_rate,
    p.compute_fraction,
    p.training_fraction,
    p.is_final_target
from {{ ref('int_forecast_separation') }} as f
join {{ ref('prediction_precision_recall') }} as p
  on p.dataset = f.dataset and p.predictor_model = f.predictor_model and p.predictor_revision = f.predictor_revision
 and p.target_model = f.target_model and p.target_revision = f.target_revision
