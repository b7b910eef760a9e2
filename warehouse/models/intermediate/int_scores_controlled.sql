-- Per unit x scored sequence of datasets with per-sequence metadata (raw.sequences): label,
-- loss, copies (and their power-of-two bin), category and insertion window. Only units of a
-- controlled experiment: their dataset has insertion metadata (a category or an insertion
-- window), or the unit has a declared role. (Plain duplication counts are served by
-- memorization_by_duplication without scanning score rows; this model reads them.) Sparse
-- (memorized-index) units are left out.
with controlled_datasets as (
    select distinct data_fingerprint from {{ ref('stg_memwh__sequences') }}
    where category is not null or insert_first_step is not null or insert_last_step is not null
),
units as (
    select u.model, u.revision, u.dataset, u.step, u.data_fingerprint
    from {{ ref('int_units') }} as u
    left join {{ ref('int_unit_roles') }} as r on r.model = u.model and r.revision = u.revision
    where not u.is_sparse
      and (r.role is not null
           or u.data_fingerprint in (select data_fingerprint from controlled_datasets))
)
select
    s.model,
    s.revision,
    s.dataset,
    u.step,
    s.seq_idx,
    s.is_memorized,
    s.loss,
    q.duplicates,
    {{ power_of_two_bin('q.duplicates') }} as duplicates_bin,
    coalesce(q.category, 'uncategorized') as category,
    q.insert_first_step,
    q.insert_last_step
from units as u
join {{ ref('int_scores_labeled') }} as s
    on s.model = u.model and s.revision = u.revision and s.dataset = u.dataset
join {{ ref('stg_memwh__sequences') }} as q
    on q.data_fingerprint = u.data_fingerprint and q.seq_idx = s.seq_idx
