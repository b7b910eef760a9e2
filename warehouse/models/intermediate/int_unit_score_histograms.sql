-- Per-unit histograms: prefix_match_len in unit-width bins, memorization_score in
-- var('score_bins') bins over [0, 1] (a score of exactly 1 lands in [1, 1 + 1/bins)).
{% set bins = var('score_bins', 32) %}
select model, revision, dataset, any_value(unit_fingerprint) as unit_fingerprint,
       'prefix_match_len' as metric,
       prefix_match_len::double as bin_lower, prefix_match_len + 1.0 as bin_upper,
       sum(n_rows) as n_sequences
from {{ ref('int_unit_score_cells') }}
where prefix_match_len is not null
group by model, revision, dataset, prefix_match_len
union all
select model, revision, dataset, any_value(unit_fingerprint) as unit_fingerprint,
       'memorization_score' as metric,
       score_bin::double / {{ bins }} as bin_lower, (score_bin + 1.0) / {{ bins }} as bin_upper,
       sum(n_with_score) as n_sequences
from {{ ref('int_unit_score_cells') }}
where score_bin is not null
group by model, revision, dataset, score_bin
