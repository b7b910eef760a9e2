-- Per-sequence scores, typed and named as the warehouse uses them: ONE row per unit and sequence,
-- scored at its run's prompt_len (the longest of a multi-prompt run). Rows at a run's other
-- prompt lengths are in stg_memwh__scores_by_prompt_len (memorization_by_context reads them), so
-- every model keyed on (model, revision, dataset, seq_idx) stays within one setting per run.
-- dataset: the run's data_fingerprint (macros/datasets.sql), part of the unit.
select
    model,
    revision,
    {{ dataset_key('data_fingerprint') }} as dataset,
    seq_idx,
    prompt_len::integer as prompt_len,
    prefix_match_len::integer as prefix_match_len,
    exact_match,
    memorization_score::double as memorization_score,
    tf_token_accuracy::double as tf_token_accuracy,
    loss::double as loss,
    min_k_logprob::double as min_k_logprob,
    zlib_ratio::double as zlib_ratio,
    label_margin::double as label_margin,
    label_certain,
    label_verified,
    run_id
from {{ source('raw', 'scores') }}
where is_run_prompt_len
