-- Memorization rate against parameters, tokens and FLOPs with log-log OLS slopes:
-- slope_vs_params and slope_vs_flops across the models of a family at one revision;
-- slope_vs_tokens across the revisions of one model (tokens are equal within a revision).
with r as (
    select *, case when memorization_rate > 0 then ln(memorization_rate) end as ln_rate
    from {{ ref('memorization_rates') }}
)
select
    family, revision, step, model, n_params, tokens_seen, train_flops, memorization_rate,
    regr_slope(ln_rate, case when n_params > 0 then ln(n_params) end)
        over (partition by family, revision) as slope_vs_params,
    regr_slope(ln_rate, case when tokens_seen > 0 then ln(tokens_seen) end)
        over (partition by family, model) as slope_vs_tokens,
    regr_slope(ln_rate, case when train_flops > 0 then ln(train_flops) end)
        over (partition by family, revision) as slope_vs_flops
from r
