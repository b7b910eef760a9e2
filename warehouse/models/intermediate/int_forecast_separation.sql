{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['dataset', 'predictor_model', 'predictor_revision', 'target_model', 'target_revision'],
    pre_hook=["{{ disable_common_subplans() }}"],
    post_hook=["reset disabled_optimizers", "{{ delete_stale_forecast_pairs() }}"]
) }}
-- Memorization forecasting (STUDIES §3): how well each signal of a predictor unit ranks the
-- target unit's memorized sequences, for every pair of int_prediction_pairs and over the same
-- population as prediction_precision_recall (sequences both scored; for an earlier checkpoint,
-- only seq_idx < population_seq_limit). Pairs with a sparse (memorized-index) unit are left out:
-- the predictor's signals exist only for its memorized rows. Incremental per pair.
--
-- Scale: at Lesci et al.'s grid (86,400 pairs x 16,384 sequences x 6 signals) a row join per
-- pair is 8.5G rows. The ROC of a pair changes direction only at the scores of the target's
-- memorized sequences (0.3-2% of rows), so for pairs over one population the counts relation
-- handed to separation_metrics holds, per pair and signal, only: each distinct score of a
-- positive (its positives, and its negatives = the predictor's rows at that score minus them),
-- one row per run of negatives between two such scores (at the run's lowest score), and the
-- lowest score >= memorized_min_tokens of prefix_match_len (the paper's binary predictor).
-- Merging a run of negatives that no positive separates changes no AUC term, DeLong placement,
-- TPR at an FPR (points inside a run are dominated) or average-precision term; the curve keeps
-- its corners. The predictor's counts per score (cumulative from the top: one sort and running
-- sum, cumulative_from_top) are computed once per predictor unit and population, not per pair. Pairs over different populations (a target
-- scored other sequences) join rows as before.
with pairs as (
    select * from ({{ forecast_pairs() }})
),
changed as (
    select * from pairs as p
    {% if is_incremental() %}
    where not exists (
        select 1 from {{ this }} as t
        where t.dataset = p.dataset and t.predictor_model = p.predictor_model and t.predictor_revision = p.predictor_revision
          and t.target_model = p.target_model and t.target_revision = p.target_revision
          and t.forecast_fingerprint = p.forecast_fingerprint)
    {% endif %}
),
units as (
    select u.model, u.revision, u.dataset, u.population_key, e.seq_end
    from {{ ref('int_units') }} as u
    join (select model, revision, dataset, max(hi) as seq_end
          from {{ ref('int_unit_populations') }} group by all) as e
      on e.model = u.model and e.revision = u.revision and e.dataset = u.dataset
),
cp as materialized (
    -- a limit at or past the predictor's last sequence cuts nothing: one population per predictor
    select c.*, row_number() over () as pair_id,
           case when c.population_seq_limit < pu.seq_end then c.population_seq_limit end as seq_limit,
           pu.population_key = tu.population_key as same_population
    from changed as c
    join units as pu on pu.model = c.predictor_model and pu.revision = c.predictor_revision and pu.dataset = c.dataset
    join units as tu on tu.model = c.target_model and tu.revision = c.target_revision and tu.dataset = c.dataset
),
{#- one population: breakpoints (signals as ids 1-6 of oriented_signal_list, named at the end) -#}
predictor_groups as materialized (
    select *, (row_number() over ())::integer as group_id
    from (select distinct dataset, predictor_model, predictor_revision, seq_limit from cp where same_population)
),
pair_groups as materialized (
    select c.pair_id, g.group_id
    from cp as c
    join predictor_groups as g
      on g.predictor_model = c.predictor_model and g.predictor_revision = c.predictor_revision
     and g.dataset = c.dataset and g.seq_limit is not distinct from c.seq_limit
    where c.same_population
),
predictor_counts as materialized (
    -- the predictor's rows per distinct score of each population and signal: integer keys,
    -- this is the model's one pass over all the predictor's rows
    select group_id, signal, score, count(*) as n_eq
    from (
        select g.group_id, unnest({{ signal_ids() }}) as signal,
               unnest({{ oriented_signal_list('s') }}) as score
        from {{ ref('int_scores_labeled') }} as s
        join predictor_groups as g
          on g.predictor_model = s.model and g.predictor_revision = s.revision and g.dataset = s.dataset
        where g.seq_limit is null or s.seq_idx < g.seq_limit
    )
    where score is not null
    group by all
),
predictor_scores as materialized (
    -- per distinct score: its rows (n_eq), the rows at or above it (n_ge), the population's rows
    -- (n_total), its lowest score (min_score) and the next higher score (the lowest score of a
    -- run of negatives ending above it)
    select group_id, signal, score, n_eq, ge_n_eq as n_ge, total_n_eq as n_total,
           lowest_score as min_score, next_higher
    from ({{ cumulative_from_top('predictor_counts', ['group_id', 'signal'], ['n_eq'], next_higher=true) }})
),
positives as (
    -- the target's memorized sequences in the predictor's population, at the predictor's scores
    select * from (
        select c.pair_id, pg.group_id, unnest({{ signal_ids() }}) as signal,
               unnest({{ oriented_signal_list('s') }}) as score
        from cp as c
        join pair_groups as pg on pg.pair_id = c.pair_id
        join {{ ref('int_memorized_sequences') }} as m
          on m.model = c.target_model and m.revision = c.target_revision and m.dataset = c.dataset
        join {{ ref('int_scores_labeled') }} as s
          on s.model = c.predictor_model and s.revision = c.predictor_revision and s.dataset = c.dataset
         and s.seq_idx = m.seq_idx
        where c.seq_limit is null or m.seq_idx < c.seq_limit
    )
    where score is not null
),
breakpoints as (
    select pair_id, group_id, signal, score, sum(n_pos) as n_pos
    from (
        select *, 1 as n_pos from positives
        union all by name
        select pg.pair_id, pg.group_id, b.signal, b.score, 0 as n_pos
        from pair_groups as pg
        join (select group_id, signal, min(score) as score
              from predictor_scores
              where signal = {{ signal_id_of('prefix_match_len') }} and score >= {{ var('memorized_min_tokens', 32) }}
              group by all) as b
          on b.group_id = pg.group_id
    )
    group by all
),
placed_breakpoints as (
    select b.*, d.n_eq, d.n_ge, d.next_higher, d.n_total, d.min_score,
           coalesce(lag(d.n_ge) over w, 0) as n_ge_above,
           lead(b.score) over w is null as is_lowest
    from breakpoints as b
    join predictor_scores as d
      on d.group_id = b.group_id and d.signal = b.signal and d.score = b.score
    window w as (partition by b.pair_id, b.signal order by b.score desc)
),
breakpoint_counts as (
    select pair_id, signal, score, n_pos, n_eq - n_pos as n_neg
    from placed_breakpoints
    union all
    -- the negatives strictly between this breakpoint and the one above it
    select pair_id, signal, next_higher, 0, n_ge - n_eq - n_ge_above
    from placed_breakpoints
    where n_ge - n_eq - n_ge_above > 0
    union all
    -- the negatives below the lowest breakpoint
    select pair_id, signal, min_score, 0, n_total - n_ge
    from placed_breakpoints
    where is_lowest and n_total - n_ge > 0
),
{#- different populations: the row join -#}
predictor_rows as (
    select s.model, s.revision, s.dataset, s.seq_idx, {{ oriented_signal_list('s') }} as scores
    from {{ ref('int_scores_labeled') }} as s
    where exists (select 1 from cp as c
                  where not c.same_population
                    and c.predictor_model = s.model and c.predictor_revision = s.revision
                    and c.dataset = s.dataset)
),
target_rows as (
    select s.model, s.revision, s.dataset, s.seq_idx, s.is_memorized
    from {{ ref('int_scores_labeled') }} as s
    where exists (select 1 from cp as c
                  where not c.same_population
                    and c.target_model = s.model and c.target_revision = s.revision
                    and c.dataset = s.dataset)
),
long as (
    select * from (
        select c.pair_id, t.is_memorized, unnest({{ signal_ids() }}) as signal, unnest(p.scores) as score
        from cp as c
        join predictor_rows as p
          on p.model = c.predictor_model and p.revision = c.predictor_revision and p.dataset = c.dataset
        join target_rows as t
          on t.model = c.target_model and t.revision = c.target_revision and t.dataset = c.dataset
         and t.seq_idx = p.seq_idx
        where not c.same_population
          and (c.population_seq_limit is null or p.seq_idx < c.population_seq_limit)
    )
    where score is not null
),
counts as materialized (
    select * from breakpoint_counts
    union all
    select pair_id, signal, score,
           count(*) filter (where is_memorized) as n_pos,
           count(*) filter (where not is_memorized) as n_neg
    from long
    group by all
),
metrics as (
    {#- keyed by one integer per pair: the metrics sort, join and group every score row -#}
    {{ separation_metrics('counts', ['pair_id'], signal_id_of('prefix_match_len')) }}
)
select
    c.dataset, c.predictor_model, c.predictor_revision, c.target_model, c.target_revision,
    c.forecast_fingerprint, {{ signal_name_of('m.signal') }} as signal,
    m.n_pos + m.n_neg as n_population, m.n_pos as n_positive,
    m.* exclude (pair_id, signal, n_pos, n_neg)
from metrics as m
join cp as c using (pair_id)
