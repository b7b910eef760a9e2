-- Roles declared after the fact (`memwh import role`), one row per unit; they win over manifests.
select model, revision, role, variant_of, method, method_params, declared_at
from {{ source('raw', 'unit_roles') }}
