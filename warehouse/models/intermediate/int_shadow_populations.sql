{{ config(materialized='table') }}
-- Shadow populations: the usable shadow units (int_shadow_units) of one family on one dataset.
-- population_fingerprint changes when any member's rows, labels or exposure change, or the
-- LiRA vars do, so the membership rows of the units it audits are recomputed. '|fits=exact':
-- the fits became exact sums (int_shadow_fits); LiRA rows kept from float fits are redone.
select
    family,
    dataset,
    count(*) as n_shadow_units,
    sum(n_in) as n_in_rows,
    sum(n_out) as n_out_rows,
    md5(string_agg(model || '@' || revision || ':' || membership_fingerprint, ','
                   order by model, revision)
        || '|min={{ var("shadow_min_models", 2) }}|var={{ var("lira_variance", "global") }}'
        || '|floor={{ var("lira_min_sd", 0.001) }}|fits=exact') as population_fingerprint
from {{ ref('int_shadow_units') }}
where exclusion_reason is null
group by family, dataset
