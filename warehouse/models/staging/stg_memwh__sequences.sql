-- Per-sequence dataset metadata (duplication counts) keyed by data_fingerprint + seq_idx.
select data_fingerprint, seq_idx, duplicates, is_canary
from {{ source('raw', 'sequences') }}
