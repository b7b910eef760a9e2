{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['predictor_model', 'predictor_revision', 'target_model', 'target_revision'],
    post_hook=["{{ delete_stale_forecast_pairs() }}"]
) }}
-- Memorization forecasting (STUDIES §3): how well each signal of a predictor unit ranks the
-- target unit's memorized sequences, for every pair of int_prediction_pairs and over the same
-- population as prediction_precision_recall (sequences both scored; for an earlier checkpoint,
-- only seq_idx < population_seq_limit). Pairs with a sparse (memorized-index) unit are left out:
-- the predictor's signals exist only for its memorized rows. Incremental per pair.
with pairs as (
    select * from ({{ forecast_pairs() }})
),
changed as (
    select * from pairs as p
    {% if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as t
        where t.predictor_model = p.predictor_model and t.predictor_revision = p.predictor_revision
          and t.target_model = p.target_model and t.target_revision = p.target_revision
          and t.forecast_fingerprint = p.forecast_fingerprint)
    {% endif %}
),
predictor_rows as (
    select s.model, s.revision, s.seq_idx, {{ oriented_signals('s') }}
    from {{ ref('int_scores_labeled') }} as s
    where exists (select 1 from changed as c
                  where c.predictor_model = s.model and c.predictor_revision = s.revision)
),
target_rows as (
    select s.model, s.revision, s.seq_idx, s.is_memorized
    from {{ ref('int_scores_labeled') }} as s
    where exists (select 1 from changed as c
                  where c.target_model = s.model and c.target_revision = s.revision)
),
long as (
    unpivot (
        select c.predictor_model, c.predictor_revision, c.target_model, c.target_revision,
               t.is_memorized, p.* exclude (model, revision, seq_idx)
        from changed as c
        join predictor_rows as p on p.model = c.predictor_model and p.revision = c.predictor_revision
        join target_rows as t
          on t.model = c.target_model and t.revision = c.target_revision and t.seq_idx = p.seq_idx
        where c.population_seq_limit is null or p.seq_idx < c.population_seq_limit
    )
    on {{ signal_names() }}
    into name signal value score
),
counts as (
    select predictor_model, predictor_revision, target_model, target_revision, signal, score,
           count(*) filter (where is_memorized) as n_pos,
           count(*) filter (where not is_memorized) as n_neg
    from long
    group by all
),
metrics as (
    {{ separation_metrics('counts', ['predictor_model', 'predictor_revision', 'target_model', 'target_revision']) }}
)
select
    m.predictor_model, m.predictor_revision, m.target_model, m.target_revision,
    c.forecast_fingerprint, m.signal,
    m.n_pos + m.n_neg as n_population, m.n_pos as n_positive,
    m.* exclude (predictor_model, predictor_revision, target_model, target_revision, signal, n_pos, n_neg)
from metrics as m
join changed as c using (predictor_model, predictor_revision, target_model, target_revision)
