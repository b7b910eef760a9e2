-- Generated continuations saved by generate-mode runs (--save-generations).
select model, revision, {{ dataset_key('data_fingerprint') }} as dataset, seq_idx, generated_tokens,
       data_fingerprint, run_id
from {{ source('raw', 'generations') }}
