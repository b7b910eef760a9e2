{{ config(materialized='table') }}
-- Per shadow population x sequence x signal: the in and out samples of the oriented signal
-- (STUDIES §2) over the population's shadow units (in = the unit trained on the sequence,
-- out = it did not: held_out or not_yet_seen; unknown rows left out), their sizes, means and
-- sample standard deviations, and the widths LiRA uses (var lira_variance: the sequence's own
-- sd, or the population's pooled within-sequence sd per signal and side; floored at var
-- lira_min_sd; NULL where undefined: greatest() alone would turn a missing sd into the
-- floor). One grouped scan with every signal as columns, then unpivoted: ~6x fewer rows
-- to aggregate than unpivoting first.
{%- set signals = signal_names().split(', ') %}
{%- set floor = var('lira_min_sd', 0.001) %}
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
wide as (
    select
        family, dataset, seq_idx,
        {%- for sig in signals %}
        count({{ sig }}) filter (where is_in) as {{ sig }}__n_in,
        count({{ sig }}) filter (where not is_in) as {{ sig }}__n_out,
        avg({{ sig }}) filter (where is_in) as {{ sig }}__mean_in,
        avg({{ sig }}) filter (where not is_in) as {{ sig }}__mean_out,
        stddev_samp({{ sig }}) filter (where is_in) as {{ sig }}__sd_in,
        stddev_samp({{ sig }}) filter (where not is_in) as {{ sig }}__sd_out{{ ',' if not loop.last }}
        {%- endfor %}
    from rows
    group by family, dataset, seq_idx
),
long as (
    -- INCLUDE NULLS: by default a NULL in any value column (sd of a single model) drops the row
    from wide unpivot include nulls (
        (n_in, n_out, mean_in, mean_out, sd_in, sd_out) for signal in (
        {%- for sig in signals %}
            ({{ sig }}__n_in, {{ sig }}__n_out, {{ sig }}__mean_in, {{ sig }}__mean_out,
             {{ sig }}__sd_in, {{ sig }}__sd_out) as {{ sig }}{{ ',' if not loop.last }}
        {%- endfor %}
        )
    )
),
fits as (
    -- a signal no shadow unit has (e.g. memorization_score in fast mode): no row
    select * from long where n_in + n_out > 0
),
pooled as (
    -- the common width of the fixed-variance model: within-sequence deviations pooled,
    -- sum (n - 1) sd^2 / sum (n - 1) over the sequences with n >= 2 on that side
    select family, dataset, signal,
           sqrt(sum((n_in - 1) * sd_in ^ 2) filter (where n_in >= 2)
                / nullif(sum(n_in - 1) filter (where n_in >= 2), 0)) as pooled_sd_in,
           sqrt(sum((n_out - 1) * sd_out ^ 2) filter (where n_out >= 2)
                / nullif(sum(n_out - 1) filter (where n_out >= 2), 0)) as pooled_sd_out
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
