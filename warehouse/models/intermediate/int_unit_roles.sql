-- One row per unit: its role in a controlled experiment and its base unit (variant_of).
-- A declaration (`memwh import role`, raw.unit_roles) wins over the manifests' fields.
with manifest as (
    select model, revision,
           max(role) as role, max(variant_of) as variant_of, max(method) as method,
           max(method_params::varchar) as method_params,
           count(distinct role) > 1 or count(distinct variant_of) > 1 as is_mixed
    from {{ ref('stg_memwh__runs') }}
    group by model, revision
),
declared as (
    select * from {{ ref('stg_memwh__unit_roles') }}
),
resolved as (
    select
        m.model,
        m.revision,
        case when d.model is not null then d.role else m.role end as role,
        case when d.model is not null then d.variant_of else m.variant_of end as variant_of,
        case when d.model is not null then d.method else m.method end as method,
        case when d.model is not null then d.method_params::varchar else m.method_params end as method_params,
        case when d.model is not null then 'declared'
             when m.role is not null or m.variant_of is not null then 'manifest' end as role_source,
        coalesce(m.is_mixed, false) and d.model is null as has_mixed_roles
    -- every ingested unit (not int_units: int_units reads the role to place a unit on its ladder)
    from manifest as m
    left join declared as d using (model, revision)
)
select
    *,
    nullif(regexp_extract(variant_of, '^(.*)@([^@]*)$', 1), '') as base_model,
    nullif(regexp_extract(variant_of, '^(.*)@([^@]*)$', 2), '') as base_revision
from resolved
