-- Counterfactual memorization (Zhang et al. 2021; Dentan et al.): per shadow population
-- (shadow units of one family on one dataset) x sequence x signal, how much better the
-- population's models do on the sequence when they trained on it than when they did not:
-- counterfactual = mean_in - mean_out of the oriented signal (STUDIES §2: higher = more
-- member-like, so a positive value is memorization). NULL below var shadow_min_models models
-- on either side.
{%- set min_models = var('shadow_min_models', 2) %}
select
    f.family,
    f.dataset,
    f.seq_idx,
    f.signal,
    p.n_shadow_units,
    f.n_in,
    f.n_out,
    f.mean_in,
    f.mean_out,
    f.sd_in,
    f.sd_out,
    case when f.n_in >= {{ min_models }} and f.n_out >= {{ min_models }}
         then f.mean_in - f.mean_out end as counterfactual
from {{ ref('int_shadow_fits') }} as f
join {{ ref('int_shadow_populations') }} as p using (family, dataset)
