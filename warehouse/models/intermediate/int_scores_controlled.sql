-- Per unit x scored sequence of datasets with per-sequence metadata (raw.sequences): label,
-- loss, copies (and their power-of-two bin), category and insertion window. Units whose
-- shards mix datasets, and sparse (memorized-index) units, are left out.
select
    s.model,
    s.revision,
    u.step,
    s.seq_idx,
    s.is_memorized,
    s.loss,
    q.duplicates,
    {{ power_of_two_bin('q.duplicates') }} as duplicates_bin,
    coalesce(q.category, 'uncategorized') as category,
    q.insert_first_step,
    q.insert_last_step
from {{ ref('int_scores_labeled') }} as s
join {{ ref('int_units') }} as u on u.model = s.model and u.revision = s.revision
join {{ ref('stg_memwh__sequences') }} as q
    on q.data_fingerprint = u.data_fingerprint and q.seq_idx = s.seq_idx
where not u.is_sparse and not contains(u.data_fingerprint, ',')
