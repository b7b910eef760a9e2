-- One row per scored unit (model x revision x dataset) with its provenance and role (controlled experiments).
select
    u.model, u.family, u.family_is_guessed, u.revision, u.dataset, u.step, u.n_params, u.n_params_is_guessed,
    u.tokens_seen, u.train_flops, u.source,
    u.mode, u.dtype, u.device, u.suppress_eos, u.prompt_len, u.cont_len, u.n_shards,
    u.n_scored::bigint as n_scored, u.data_fingerprint, u.first_started_at, u.last_finished_at,
    u.hosts, u.memwh_version, u.non_embedding_params, u.sequences_per_step, u.is_sparse,
    u.last_ingested_at, u.is_final_revision, r.role, r.variant_of, r.method, r.method_params,
    u.ladder, u.setting_key
from {{ ref('int_units') }} as u
left join {{ ref('int_unit_roles') }} as r on r.model = u.model and r.revision = u.revision
