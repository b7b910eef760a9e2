{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['model', 'revision', 'dataset'],
    post_hook=["{{ delete_stale_units() }}"]
) }}
-- The sparse set of memorized sequences per unit (0.3-2% of rows): every pairwise model joins
-- these instead of the dense score rows. Incremental per unit (see macros/incremental_units.sql).
with changed as ({{ changed_units() }})
select s.model, s.revision, s.dataset, s.seq_idx, s.prefix_match_len, s.memorization_score, c.unit_fingerprint
from {{ ref('int_scores_labeled') }} as s
join changed as c on c.model = s.model and c.revision = s.revision and c.dataset = s.dataset
where s.is_memorized and {{ unit_scan_filter('s.model', 's.revision', 's.dataset') }}
