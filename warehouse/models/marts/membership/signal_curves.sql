-- ROC and precision-recall points of every membership_inference and memorization_forecast row,
-- for charts: at most ~200 points per curve, chosen so that the shape (50 FPR, 50 TPR,
-- 10-per-decade log-FPR and 40 precision bins), both ends and the paper's binary predictor
-- (prefix_match_len >= memorized_min_tokens, flagged) survive. The first point of a curve is
-- (0, 0) (threshold NULL: above every score); recall = tpr.
with membership as (
    select 'membership' as study, dataset, model, revision, null::varchar as target_model,
           null::varchar as target_revision, nonmember_kind, signal, roc_points
    from {{ ref('int_membership_separation') }}
),
forecast as (
    select 'forecast', dataset, predictor_model, predictor_revision, target_model, target_revision,
           null::varchar, signal, roc_points
    from {{ ref('int_forecast_separation') }}
),
curves as (
    select * from membership
    union all
    select * from forecast
),
points as (
    select study, dataset, model, revision, target_model, target_revision, nonmember_kind, signal,
           generate_subscripts(roc_points, 1) - 1 as point_index,
           unnest(roc_points) as pt
    from curves
)
select
    study, dataset, model, revision, target_model, target_revision, nonmember_kind, signal, point_index,
    pt.threshold, pt.fp, pt.tp, pt.fpr, pt.tpr, pt.precision, pt.tpr as recall,
    pt.is_binary_predictor
from points
