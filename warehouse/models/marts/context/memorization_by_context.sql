-- Memorization rate per unit x prompt_len x cont_len (Carlini et al. 2023: the rate grows
-- log-linearly with the prompt length), with its Wilson 95% interval, and per unit and cont_len
-- the least-squares slope of ln(rate) on ln(prompt_len) over the prompt lengths with rate > 0.
-- Rows of every prompt length a run scored (stg_memwh__scores_by_prompt_len); the label is the
-- warehouse's (macros/labels.sql). Sparse (memorized-index) runs count their whole range.
with runs as (
    select run_id, cont_len, population, rows_are_sparse from {{ ref('stg_memwh__runs') }}
    where {{ can_label('cont_len') }}  -- too short for the label rule: left out, counted at build
),
per_run as (
    select
        s.model, s.revision, s.dataset, s.prompt_len, r.cont_len, s.run_id,
        any_value(r.rows_are_sparse) as rows_are_sparse,
        any_value(r.population) as population,
        count(*) as n_rows,
        count_if({{ is_memorized('s.prefix_match_len', 's.memorization_score', 'r.cont_len') }}) as n_memorized
    from {{ ref('stg_memwh__scores_by_prompt_len') }} as s
    join runs as r on r.run_id = s.run_id
    group by s.model, s.revision, s.dataset, s.prompt_len, r.cont_len, s.run_id
),
cells as (
    select
        model, revision, dataset, prompt_len, cont_len,
        sum(case when rows_are_sparse then population else n_rows end)::bigint as n_scored,
        sum(n_memorized)::bigint as n_memorized
    from per_run
    group by model, revision, dataset, prompt_len, cont_len
),
rated as (
    select *, n_memorized::double / nullif(n_scored, 0) as memorization_rate from cells
)
select
    model,
    revision,
    dataset,
    prompt_len,
    cont_len,
    n_scored,
    n_memorized,
    memorization_rate,
    {{ wilson_bound('n_memorized', 'n_scored', '-') }} as rate_ci_low,
    {{ wilson_bound('n_memorized', 'n_scored', '+') }} as rate_ci_high,
    count(*) filter (where memorization_rate > 0) over unit as n_prompt_lens_in_slope,
    case when count(*) filter (where memorization_rate > 0) over unit >= 2 then
        regr_slope(ln(memorization_rate), ln(prompt_len)) filter (where memorization_rate > 0) over unit
    end as log_log_slope
from rated
window unit as (partition by model, revision, dataset, cont_len)
