-- Per-sequence exposure rows of table declarations (first_step NULL = never trained on).
select model, dataset, seq_idx, first_step, n_exposures, last_step
from {{ source('raw', 'exposure') }}
