-- Generated continuations saved by generate-mode runs (--save-generations).
select model, revision, seq_idx, generated_tokens, data_fingerprint, run_id
from {{ source('raw', 'generations') }}
