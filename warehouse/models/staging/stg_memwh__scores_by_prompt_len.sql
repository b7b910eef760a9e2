-- Every score row at every prompt length a run scored (contract version 2: one row per
-- sequence and prompt length); version 1 rows carry their run's prompt_len.
select
    model,
    revision,
    {{ dataset_key('data_fingerprint') }} as dataset,
    seq_idx,
    prompt_len::integer as prompt_len,
    prefix_match_len::integer as prefix_match_len,
    memorization_score::double as memorization_score,
    run_id
from {{ source('raw', 'scores') }}
