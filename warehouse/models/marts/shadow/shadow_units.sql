-- The roster of every shadow population: each unit with role 'shadow', its population
-- (family x dataset), its in / out sequence counts, and why it is left out when it is.
select
    model,
    revision,
    family,
    dataset,
    exposure_kind,
    n_in,
    n_out,
    n_unknown,
    exclusion_reason is null as is_included,
    exclusion_reason
from {{ ref('int_shadow_units') }}
