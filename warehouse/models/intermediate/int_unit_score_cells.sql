{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['model', 'revision', 'dataset'],
    on_schema_change='append_new_columns',
    post_hook=["{{ delete_stale_units() }}"]
) }}
-- One scan of the score rows per changed unit, grouped into cells of (prefix_match_len,
-- memorization_score bin): counts and sums from which both the per-unit stats and the
-- histograms are summed exactly. Incremental per unit (see macros/incremental_units.sql); a
-- warehouse built before a column existed gains it (NULL for units computed before: unknown).
{% set bins = var('score_bins', 32) %}
with changed as ({{ changed_units() }})
select
    s.model,
    s.revision,
    s.dataset,
    c.unit_fingerprint,
    s.prefix_match_len,
    floor(s.memorization_score * {{ bins }})::integer as score_bin,
    count(*) as n_rows,
    count(*) filter (where s.is_memorized) as n_memorized,
    count(s.memorization_score) as n_with_score,
    sum(s.memorization_score) as sum_score,
    count(s.loss) as n_with_loss,
    sum(s.loss) as sum_loss,
    count(s.label_certain) as n_with_certainty,
    count(*) filter (where not s.label_certain) as n_label_uncertain,
    count(*) filter (where not s.label_certain and s.is_memorized) as n_memorized_uncertain,
    count(*) filter (where s.label_verified) as n_label_verified,
    min(s.seq_idx) as min_seq_idx,
    max(s.seq_idx) as max_seq_idx,
    current_timestamp as computed_at
from {{ ref('int_scores_labeled') }} as s
join changed as c on c.model = s.model and c.revision = s.revision and c.dataset = s.dataset
where {{ unit_scan_filter('s.model', 's.revision', 's.dataset') }}
group by all
