-- The checkpoints a memorisation profile compares (STUDIES §4): per model and dataset, the units with a known
-- training step, an exposure declaration, and dense rows (a memorized-index unit stores only its
-- memorized rows, so it has no outcome for the others), numbered by step from 0.
-- A model with one such checkpoint, or none (no steps, e.g. a final or fine-tuned model), has no
-- cohort and therefore no profile rows.
select
    e.model,
    e.revision,
    e.dataset,
    e.step,
    e.membership_fingerprint,
    (row_number() over (partition by e.model, e.dataset order by e.step, e.revision) - 1)::integer as checkpoint_index,
    count(*) over (partition by e.model, e.dataset) as n_checkpoints
from {{ ref('int_unit_exposure') }} as e
join {{ ref('int_units') }} as u on u.model = e.model and u.revision = e.revision and u.dataset = e.dataset
where e.step is not null and e.exposure_kind is not null and not u.is_sparse
