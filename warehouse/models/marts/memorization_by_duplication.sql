-- Memorization rate per number of copies of a sequence in the training data, per unit
-- (units whose scored dataset carries duplication counts in raw.sequences).
select
    d.model, d.revision, d.dataset, u.step, u.n_params, d.duplicates,
    d.n_scored, d.n_memorized,
    d.n_memorized::double / nullif(d.n_scored, 0) as memorization_rate,
    {{ wilson_bound('d.n_memorized', 'd.n_scored', '-') }} as memorization_rate_lo,
    {{ wilson_bound('d.n_memorized', 'd.n_scored', '+') }} as memorization_rate_hi
from {{ ref('int_unit_duplication_counts') }} as d
join {{ ref('int_units') }} as u on u.model = d.model and u.revision = d.revision and u.dataset = d.dataset
