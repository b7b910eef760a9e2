{{ config(materialized='table') }}
-- One row per unit (model x revision x dataset): runs rolled up, model registry joined, family/size
-- resolved (guesses flagged), and the fingerprint (run ids + label settings) that per-unit incremental models key on.
with runs as (
    select * from {{ ref('stg_memwh__runs') }}
),
registry as (
    select * from {{ ref('stg_memwh__models') }}
),
roles as (
    select model, revision, role from {{ ref('int_unit_roles') }}
),
populations as (
    select model, revision, dataset, any_value(population_key) as population_key, sum(hi - lo) as population_size
    from {{ ref('int_unit_populations') }} group by model, revision, dataset
),
rolled as (
    select
        model,
        revision,
        dataset,
        max(step) as step,
        max(family) as family,
        max(n_params) as n_params,
        max(non_embedding_params) as non_embedding_params,
        max(tokens_per_step) as tokens_per_step,
        max(sequences_per_step) as sequences_per_step,
        max(tokens_seen) as tokens_seen,
        max(train_flops) as train_flops,
        string_agg(distinct source, ',' order by source) as source,
        string_agg(distinct mode, ',' order by mode) as mode,
        string_agg(distinct dtype, ',' order by dtype) as dtype,
        string_agg(distinct device, ',' order by device) as device,
        bool_or(suppress_eos) as suppress_eos,
        max(prompt_len) as prompt_len,
        max(cont_len) as cont_len,
        count(*) as n_shards,
        sum(population) as n_scored,
        sum(n_rows) as n_rows,
        bool_or(rows_are_sparse) as is_sparse,
        string_agg(distinct data_fingerprint, ',' order by data_fingerprint) as data_fingerprint,
        min(started_at) as first_started_at,
        max(finished_at) as last_finished_at,
        string_agg(distinct host, ',' order by host) as hosts,
        string_agg(distinct memwh_version, ',' order by memwh_version) as memwh_version,
        max(ingested_at) as last_ingested_at,
        md5(string_agg(run_id, ',' order by run_id)) as run_fingerprint
    from runs
    group by model, revision, dataset
),
resolved as (
    -- Family and size: manifest (--family/--n-params, suite, measured), else the registry
    -- (other runs of the model, Pythia seed), else guessed from the label (flagged).
    select
        r.model,
        r.revision,
        r.dataset,
        coalesce(r.family, g.family, {{ family_from_label('r.model') }}, r.model) as family,
        r.family is null and g.family is null as family_is_guessed,
        r.step,
        coalesce(r.n_params, g.n_params, {{ n_params_from_label('r.model') }}) as n_params,
        r.n_params is null and g.n_params is null as n_params_is_guessed,
        coalesce(r.non_embedding_params, g.non_embedding_params) as non_embedding_params,
        coalesce(r.tokens_per_step, g.tokens_per_step) as tokens_per_step,
        coalesce(r.sequences_per_step, g.sequences_per_step) as sequences_per_step,
        coalesce(r.tokens_seen, r.step * coalesce(r.tokens_per_step, g.tokens_per_step)) as tokens_seen,
        r.train_flops,
        r.* exclude (model, revision, dataset, family, step, n_params, non_embedding_params,
                     tokens_per_step, sequences_per_step, tokens_seen, train_flops)
    from rolled as r
    left join registry as g on g.model = r.model
),
placed as (
    select
        u.*,
        -- Scaling ladder (docs/warehouse.md "Units, settings and scaling ladders"): the models compared across
        -- sizes. Undeclared units form their family's ladder; standard and perturbed units each
        -- form their own (Hubble trains both at several sizes); edited, shadow and reference
        -- units are on no ladder (NULL): they keep their own checkpoint pairs only.
        case when r.role is null then u.family
             when r.role in ('standard', 'perturbed') then u.family || '/' || r.role
        end as ladder,
        -- Extraction setting (STUDIES.md section 8): units are paired only within one setting.
        case when u.mode is null then null
             when u.mode in ('fast', 'generate', 'fast,generate') then 'exact_label'
             else 'fractional_score' end as mode_class,
        case when u.suppress_eos then 'suppressed' when not u.suppress_eos then 'allowed'
             else 'unknown' end as eos_rule
    from resolved as u
    -- a role is declared per checkpoint (model, revision): it holds for each dataset it scored
    left join roles as r using (model, revision)
),
keyed as (
    select *,
           concat_ws('|', dataset, coalesce(prompt_len::varchar, '?'),
                     coalesce(cont_len::varchar, '?'), coalesce(mode_class, '?'), eos_rule) as setting_key
    from placed
)
select
    u.* exclude (train_flops),
    coalesce(u.train_flops, 6.0 * u.n_params * u.tokens_seen) as train_flops,
    p.population_key,
    p.population_size,
    md5(u.run_fingerprint || '|{{ label_config() }}|bins={{ var("score_bins", 32) }}') as unit_fingerprint,
    coalesce(u.step = max(u.step) over (partition by u.model, u.dataset),
             count(*) over (partition by u.model, u.dataset) = 1) as is_final_revision,
    -- Largest on its ladder among the units of its setting; a unit on no ladder, or a ladder
    -- of one model (e.g. an import without a parameter count), is its own largest.
    coalesce(u.n_params = max(u.n_params) over ladder,
             min(u.model) over ladder = max(u.model) over ladder)
        as is_largest_in_family
from keyed as u
left join populations as p using (model, revision, dataset)
-- a unit whose cont_len is shorter than the label rule needs cannot be labelled (macros/labels.sql)
where {{ can_label('u.cont_len') }}
window ladder as (partition by u.ladder, case when u.ladder is null then u.model end, u.setting_key)
