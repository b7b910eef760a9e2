-- One row per scored unit (model x revision) with its provenance.
select
    model, family, family_is_guessed, revision, step, n_params, n_params_is_guessed, tokens_seen, train_flops, source, mode, dtype, device,
    suppress_eos, prompt_len, cont_len, n_shards, n_scored, data_fingerprint, first_started_at,
    last_finished_at, hosts, memwh_version,
    non_embedding_params, sequences_per_step, is_sparse, last_ingested_at
from {{ ref('int_units') }}
