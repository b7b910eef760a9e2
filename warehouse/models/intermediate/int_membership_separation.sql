{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['model', 'revision', 'dataset'],
    post_hook=["delete from {{ this }} as t where not exists (select 1 from {{ ref('int_unit_exposure') }} as u left join {{ ref('int_lira_audits') }} as la on la.model = u.model and la.revision = u.revision and la.dataset = u.dataset and la.is_primary where u.model = t.model and u.revision = t.revision and u.dataset = t.dataset and md5(u.membership_fingerprint || '|' || (select reference_config from {{ ref('int_membership_reference') }}) || coalesce('|lira=' || la.lira_fingerprint, '')) = t.separation_fingerprint) or exists (select 1 from {{ ref('int_unit_roles') }} as r where r.model = t.model and r.revision = t.revision and r.role = 'shadow')"]
) }}
-- Membership inference per unit x signal x kind of non-member (STUDIES §1-3): members vs
-- held-out, and members vs not-yet-seen, apart. One scan of each changed unit's rows: signals
-- oriented and unpivoted, counted per distinct score and class, then the exact metrics and the
-- chart points (macros/separation.sql). Rows of membership 'unknown' are left out. A unit a
-- shadow population audits (int_lira_audits, is_primary) also gets the LiRA statistics of each
-- signal as signals lira_online_<signal> / lira_offline_<signal> (int_lira_scores). Incremental
-- per unit: recomputed when its rows, labels, exposure, the reference unit or its shadow
-- population change. Shadow units (role 'shadow') are left out: each is one draw of a
-- population whose measures are counterfactual_memorization / lira_scores, and 128 of them
-- would make this the slowest model of the build for rows nobody reads.
{%- set ref_unit = var('membership_reference_unit', none) %}
{%- set lira_bases = signal_names().split(', ') %}
with ref_cfg as (
    select reference_config from {{ ref('int_membership_reference') }}
),
units as (
    -- (units without a shadow population keep the fingerprint they had before LiRA existed)
    select u.model, u.revision, u.dataset, la.model is not null as has_lira,
           md5(u.membership_fingerprint || '|' || (select reference_config from ref_cfg)
               || coalesce('|lira=' || la.lira_fingerprint, '')) as separation_fingerprint
    from {{ ref('int_unit_exposure') }} as u
    left join {{ ref('int_lira_audits') }} as la
      on la.model = u.model and la.revision = u.revision and la.dataset = u.dataset and la.is_primary
    where u.exposure_kind is not null
      and not exists (select 1 from {{ ref('int_unit_roles') }} as r
                      where r.model = u.model and r.revision = u.revision and r.role = 'shadow')
),
changed as (
    select * from units as u
    {% if is_incremental() %}
    where not exists (select 1 from {{ this }} as t
                      where t.model = u.model and t.revision = u.revision and t.dataset = u.dataset
                        and t.separation_fingerprint = u.separation_fingerprint)
    {% endif %}
),
rows as (
    select s.model, s.revision, s.seq_idx, s.dataset, s.membership, {{ oriented_signals('s') }}
    from {{ ref('int_scores_membership') }} as s
    join changed as c on c.model = s.model and c.revision = s.revision and c.dataset = s.dataset
    where s.membership <> 'unknown'
),
lira as (
    -- one column per LiRA statistic and base signal (unpivoted below with the others)
    select l.model, l.revision, l.dataset, l.seq_idx,
    {%- for sig in lira_bases %}
           max(l.lira_online) filter (where l.signal = '{{ sig }}') as lira_online_{{ sig }},
           max(l.lira_offline) filter (where l.signal = '{{ sig }}') as lira_offline_{{ sig }}{{ ',' if not loop.last }}
    {%- endfor %}
    from {{ ref('int_lira_scores') }} as l
    join changed as c on c.model = l.model and c.revision = l.revision and c.dataset = l.dataset and c.has_lira
    where l.is_primary
    group by l.model, l.revision, l.dataset, l.seq_idx
),
{% if ref_unit %}
reference as (
    -- the reference checkpoint's unit on each dataset (a unit is compared on its own dataset)
    select s.dataset, seq_idx, s.loss::double as ref_loss
    from {{ ref('int_scores_labeled') }} as s
    join {{ ref('int_membership_reference') }} as r
      on s.model = r.reference_model and s.revision = r.reference_revision
),
{% endif %}
long as (
    unpivot (
        select r.* exclude (seq_idx)
        {%- if ref_unit %},
               r.loss + x.ref_loss as ref_loss  {#- -(loss - ref loss); r.loss is already -loss #}
        {%- endif %},
        {%- for sig in lira_bases %}
               lr.lira_online_{{ sig }}, lr.lira_offline_{{ sig }}{{ ',' if not loop.last }}
        {%- endfor %}
        from rows as r
        left join lira as lr
          on lr.model = r.model and lr.revision = r.revision and lr.dataset = r.dataset and lr.seq_idx = r.seq_idx
        {% if ref_unit %}
        left join reference as x on x.seq_idx = r.seq_idx and x.dataset = r.dataset
          and not (r.model || '@' || r.revision = '{{ ref_unit }}')
        {% endif %}
    )
    on {{ signal_names() }}{% if ref_unit %}, ref_loss{% endif %},
       {%- for sig in lira_bases %} lira_online_{{ sig }}, lira_offline_{{ sig }}{{ ',' if not loop.last }}{% endfor %}
    into name signal value score
),
counts as (
    select model, revision, dataset, signal, score,
           count(*) filter (where membership = 'member') as n_member,
           count(*) filter (where membership = 'held_out') as n_held_out,
           count(*) filter (where membership = 'not_yet_seen') as n_not_yet_seen
    from long
    group by all
),
by_kind as (
    select model, revision, dataset, 'held_out' as nonmember_kind, signal, score, n_member as n_pos, n_held_out as n_neg
    from counts where n_member + n_held_out > 0
    union all
    select model, revision, dataset, 'not_yet_seen', signal, score, n_member, n_not_yet_seen
    from counts where n_member + n_not_yet_seen > 0
),
metrics as (
    {{ separation_metrics('by_kind', ['model', 'revision', 'dataset', 'nonmember_kind']) }}
)
select
    m.model, m.revision, m.dataset, c.separation_fingerprint, m.signal, m.nonmember_kind,
    m.n_pos as n_members, m.n_neg as n_nonmembers,
    m.* exclude (model, revision, dataset, signal, nonmember_kind, n_pos, n_neg)
from metrics as m
join changed as c using (model, revision, dataset)
