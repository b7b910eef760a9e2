-- Per-sequence dataset metadata (duplication counts, controlled-insertion category and window)
-- keyed by data_fingerprint + seq_idx.
select data_fingerprint, seq_idx, duplicates, is_canary, category, insert_first_step, insert_last_step
from {{ source('raw', 'sequences') }}
