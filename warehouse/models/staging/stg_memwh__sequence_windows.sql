-- The scored token windows (prompt + continuation) per dataset and sequence.
select data_fingerprint, seq_idx, tokens
from {{ source('raw', 'sequence_windows') }}
