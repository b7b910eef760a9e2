-- Memorization rate against parameters, tokens and FLOPs with log-log OLS slopes:
-- every slope within one extraction setting (int_units.setting_key);
-- slope_vs_params and slope_vs_flops across the models of one scaling ladder at one revision
-- (int_units.ladder: a family's undeclared, standard or perturbed models; an edited, shadow or
-- reference unit is on no ladder and gets no size slope); slope_vs_tokens across the revisions
-- of one model (tokens are equal within a revision).
with r as (
    select m.*, u.setting_key,
           case when m.memorization_rate > 0 then ln(m.memorization_rate) end as ln_rate
    from {{ ref('memorization_rates') }} as m
    join {{ ref('int_units') }} as u using (model, revision, dataset)
),
fitted as (
    select
        family, ladder, setting_key, dataset, revision, step, model, n_params, tokens_seen, train_flops,
        memorization_rate,
        regr_slope(ln_rate, case when n_params > 0 then ln(n_params) end) over sizes as slope_vs_params,
        regr_slope(ln_rate, case when tokens_seen > 0 then ln(tokens_seen) end)
            over (partition by model, setting_key) as slope_vs_tokens,
        regr_slope(ln_rate, case when train_flops > 0 then ln(train_flops) end) over sizes as slope_vs_flops
    from r
    window sizes as (partition by ladder, case when ladder is null then model end, setting_key, revision)
)
-- one point (a model alone on its ladder, or equal x values) has no slope: NULL, not NaN
select
    * exclude (slope_vs_params, slope_vs_tokens, slope_vs_flops),
    case when not isnan(slope_vs_params) then slope_vs_params end as slope_vs_params,
    case when not isnan(slope_vs_tokens) then slope_vs_tokens end as slope_vs_tokens,
    case when not isnan(slope_vs_flops) then slope_vs_flops end as slope_vs_flops
from fitted
