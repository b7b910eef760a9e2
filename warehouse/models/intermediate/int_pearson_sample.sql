-- depends_on: {{ ref('int_pair_config') }}
-- depends_on: {{ ref('int_units') }}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['model', 'revision', 'dataset'],
    on_schema_change='sync_all_columns',
    post_hook=["{{ delete_stale_units() }}"]
) }}
-- The deterministic sample of prefix_match_len rows Pearson correlations are computed on:
-- sequences with ((seq_idx * 2654435761) mod 2^32) mod pearson_modulus = 0 (all rows when the
-- largest unit has <= var('pearson_max_sequences') rows), one row per unit: the sampled
-- seq_idx and x in seq_idx order plus n, sum x, sum x^2, so two units sampled on the same
-- sequences get their Pearson from one dot product (int_unit_pairs), not a row join.
-- Incremental per unit; a new modulus resamples every unit.
{%- set modulus = 1 -%}
{%- if execute -%}
{%- set modulus = run_query("select pearson_modulus from " ~ ref('int_pair_config')).columns[0].values()[0] -%}
{%- endif %}
{%- set resample = false -%}
{%- if execute and is_incremental() -%}
{%- set resample = run_query("select count(*) from " ~ this ~ " where pearson_modulus <> " ~ modulus).columns[0].values()[0] > 0 -%}
{#- a table of the older one-row-per-sequence layout: resample every unit into this one -#}
{%- if 'xs' not in (adapter.get_columns_in_relation(this) | map(attribute='name') | list) -%}
{%- set resample = true -%}
{%- endif -%}
{%- endif %}
with changed as (
    {% if resample %}
    select model, revision, dataset, unit_fingerprint from {{ ref('int_units') }}
    {% else %}
    {{ changed_units() }}
    {% endif %}
)
select s.model, s.revision, s.dataset, any_value(c.unit_fingerprint) as unit_fingerprint,
       {{ modulus }}::bigint as pearson_modulus,
       count(*) as n, sum(s.prefix_match_len)::double as sx,
       sum(s.prefix_match_len::double * s.prefix_match_len) as sxx,
       list(s.seq_idx order by s.seq_idx) as seqs,
       list(s.prefix_match_len order by s.seq_idx) as xs
from {{ ref('stg_memwh__scores') }} as s
join changed as c on c.model = s.model and c.revision = s.revision and c.dataset = s.dataset
where s.prefix_match_len is not null
  and ((s.seq_idx * 2654435761) % 4294967296) % {{ modulus }} = 0
  and {% if resample %}true{% else %}{{ unit_scan_filter('s.model', 's.revision', 's.dataset') }}{% endif %}
group by s.model, s.revision, s.dataset
