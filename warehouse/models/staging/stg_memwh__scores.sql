-- Per-sequence scores, typed and named as the warehouse uses them.
select
    model,
    revision,
    seq_idx,
    prefix_match_len::integer as prefix_match_len,
    exact_match,
    memorization_score::double as memorization_score,
    tf_token_accuracy::double as tf_token_accuracy,
    loss::double as loss,
    min_k_logprob::double as min_k_logprob,
    zlib_ratio::double as zlib_ratio,
    run_id
from {{ source('raw', 'scores') }}
