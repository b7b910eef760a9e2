{{ config(materialized='table') }}
-- Per shadow population x sequence x signal: the in and out samples of the oriented signal
-- (STUDIES §2) over the population's shadow units (in = the unit trained on the sequence,
-- out = it did not: held_out or not_yet_seen; unknown rows left out), their sizes, means and
-- sample standard deviations, and the widths LiRA uses (var lira_variance: the sequence's own
-- sd, or the population's pooled within-sequence sd per signal and side; floored at var
-- lira_min_sd; NULL where undefined: greatest() alone would turn a missing sd into the
-- floor). One grouped scan per side with every signal as columns, then unpivoted: ~6x fewer
-- rows to aggregate than unpivoting first.
-- Deterministic to the bit: every sum over rows is exact, so a rebuild or another ingest
-- order gives the same fits whatever order DuckDB's threads add rows in (DOUBLE avg and
-- stddev_samp did not, and near-tied LiRA scores then ranked differently between builds).
-- Each value x and x^2 (exact in DOUBLE for float32 and integer signals) is rounded to 1e-20
-- as DECIMAL(38, 20) and summed as such (HUGEINT: exact; needs |x| < 1e8, far beyond any
-- signal); mean = s / n and (n - 1) sd^2 = ss - s^2 / n are then taken in DOUBLE from the
-- exact sums (sd relative error ~1e-16 (mean / sd)^2, i.e. sd resolved to ~1e-8 |mean|: far
-- below lira_min_sd). The pooled width sums the per-sequence (n - 1) sd^2 as DECIMAL too.
{%- set signals = signal_names().split(', ') %}
{%- set floor = var('lira_min_sd', 0.001) %}
{%- set exact = 'decimal(38, 20)' %}
with shadows as (
    select u.model, u.revision, u.family, u.dataset
    from {{ ref('int_shadow_units') }} as u
    where u.exclusion_reason is null
),
rows as (
    select sh.family, sh.dataset, s.seq_idx, s.membership = 'member' as is_in,
           {{ oriented_signals('s') }}
    from {{ ref('int_scores_membership') }} as s
    join shadows as sh on sh.model = s.model and sh.revision = s.revision and sh.dataset = s.dataset
    where s.membership <> 'unknown'
),
sides as (
    -- grouped by side rather than one FILTERed aggregate per side: half the aggregates, ~1.7x
    -- less CPU
    select
        family, dataset, seq_idx, is_in,
        {%- for sig in signals %}
        count({{ sig }}) as {{ sig }}__n,
        sum({{ sig }}::{{ exact }}) as {{ sig }}__s,
        sum(({{ sig }} * {{ sig }})::{{ exact }}) as {{ sig }}__ss{{ ',' if not loop.last }}
        {%- endfor %}
    from rows
    group by family, dataset, seq_idx, is_in
),
wide as (
    -- the two sides side by side (at most one row each)
    select
        family, dataset, seq_idx,
        {%- for sig in signals %}
        {%- for side, cond in [('in', 'is_in'), ('out', 'not is_in')] %}
        coalesce(max({{ sig }}__n) filter (where {{ cond }}), 0) as {{ sig }}__n_{{ side }},
        max({{ sig }}__s) filter (where {{ cond }}) as {{ sig }}__s_{{ side }},
        max({{ sig }}__ss) filter (where {{ cond }}) as {{ sig }}__ss_{{ side }}{{ ',' if not loop.last }}
        {%- endfor %}{{ ',' if not loop.last }}
        {%- endfor %}
    from sides
    group by family, dataset, seq_idx
),
long as (
    -- INCLUDE NULLS: by default a NULL in any value column (the sums of an empty side) drops
    -- the row
    from wide unpivot include nulls (
        (n_in, n_out, s_in, s_out, ss_in, ss_out) for signal in (
        {%- for sig in signals %}
            ({{ sig }}__n_in, {{ sig }}__n_out, {{ sig }}__s_in, {{ sig }}__s_out,
             {{ sig }}__ss_in, {{ sig }}__ss_out) as {{ sig }}{{ ',' if not loop.last }}
        {%- endfor %}
        )
    )
),
fits as (
    -- a signal no shadow unit has (e.g. memorization_score in fast mode): no row.
    -- dev = (n - 1) sd^2, NULL below 2 units, >= 0 (all values equal can round to -1 ulp)
    select family, dataset, seq_idx, signal, n_in, n_out,
           s_in::double / n_in as mean_in,
           s_out::double / n_out as mean_out,
           case when n_in >= 2 then greatest(ss_in::double - s_in::double * (s_in::double / n_in), 0) end as dev_in,
           case when n_out >= 2 then greatest(ss_out::double - s_out::double * (s_out::double / n_out), 0) end as dev_out,
           sqrt(dev_in / (n_in - 1)) as sd_in,
           sqrt(dev_out / (n_out - 1)) as sd_out
    from long
    where n_in + n_out > 0
),
pooled as (
    -- the common width of the fixed-variance model: within-sequence deviations pooled,
    -- sum (n - 1) sd^2 / sum (n - 1) over the sequences with n >= 2 on that side
    select family, dataset, signal,
           sqrt(sum(dev_in::{{ exact }})::double / nullif(sum(n_in - 1) filter (where n_in >= 2), 0)) as pooled_sd_in,
           sqrt(sum(dev_out::{{ exact }})::double / nullif(sum(n_out - 1) filter (where n_out >= 2), 0)) as pooled_sd_out
    from fits
    group by family, dataset, signal
)
select
    f.family,
    f.dataset,
    f.seq_idx,
    f.signal,
    f.n_in,
    f.n_out,
    f.mean_in,
    f.mean_out,
    f.sd_in,
    f.sd_out,
    {%- if var('lira_variance', 'global') == 'global' %}
    case when p.pooled_sd_in is not null then greatest(p.pooled_sd_in, {{ floor }}) end as lira_sd_in,
    case when p.pooled_sd_out is not null then greatest(p.pooled_sd_out, {{ floor }}) end as lira_sd_out
    {%- else %}
    case when f.sd_in is not null then greatest(f.sd_in, {{ floor }}) end as lira_sd_in,
    case when f.sd_out is not null then greatest(f.sd_out, {{ floor }}) end as lira_sd_out
    {%- endif %}
from fits as f
join pooled as p using (family, dataset, signal)
