{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key=['model', 'revision', 'dataset'],
    pre_hook=["{{ disable_common_subplans() }}"],
    post_hook=["reset disabled_optimizers", "delete from {{ this }} as t where not exists (select 1 from {{ ref('int_unit_exposure') }} as u left join {{ ref('int_lira_audits') }} as la on la.model = u.model and la.revision = u.revision and la.dataset = u.dataset and la.is_primary where u.model = t.model and u.revision = t.revision and u.dataset = t.dataset and md5(u.membership_fingerprint || '|' || (select reference_config from {{ ref('int_membership_reference') }}) || coalesce('|lira=' || la.lira_fingerprint, '')) = t.separation_fingerprint) or exists (select 1 from {{ ref('int_unit_roles') }} as r where r.model = t.model and r.revision = t.revision and r.role = 'shadow')"]
) }}
-- Membership inference per unit x signal x kind of non-member (STUDIES §1-3): members vs
-- held-out, and members vs not-yet-seen, apart. One scan of each changed unit's rows: signals
-- oriented and unpivoted, counted per distinct score and class, one sort and running sum for the
-- three classes (cumulative_from_top; both kinds read it), then the exact metrics and the chart
-- points (separation_from_cumulative; both in macros/separation.sql). Units and signals are
-- numbered inside (integer keys: the 10M-row benchmark's aggregate and sort are over ~50M score
-- rows). Rows of membership 'unknown' are left out. A unit a
-- shadow population audits (int_lira_audits, is_primary) also gets the LiRA statistics of each
-- signal as signals lira_online_<signal> / lira_offline_<signal> (int_lira_scores). Incremental
-- per unit: recomputed when its rows, labels, exposure, the reference unit or its shadow
-- population change. Shadow units (role 'shadow') are left out: each is one draw of a
-- population whose measures are counterfactual_memorization / lira_scores, and 128 of them
-- would make this the slowest model of the build for rows nobody reads.
{%- set ref_unit = var('membership_reference_unit', none) %}
{%- set lira_bases = signal_names().split(', ') %}
{#- every signal, numbered: rows carry the number (cheap to group and sort), names come back at
    the end -#}
{%- set signals = lira_bases + (['ref_loss'] if ref_unit else []) %}
{%- for sig in lira_bases %}{% do signals.extend(['lira_online_' ~ sig, 'lira_offline_' ~ sig]) %}{% endfor %}
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
changed as materialized (
    select *, (row_number() over ())::integer as unit_id,
           {{ "model || '@' || revision = '" ~ ref_unit ~ "'" if ref_unit else 'false' }} as is_reference
    from units as u
    {% if is_incremental() %}
    where not exists (select 1 from {{ this }} as t
                      where t.model = u.model and t.revision = u.revision and t.dataset = u.dataset
                        and t.separation_fingerprint = u.separation_fingerprint)
    {% endif %}
),
rows as (
    select c.unit_id, c.dataset, c.is_reference, c.has_lira, s.seq_idx,
           -- 1 member, 2 held out, 3 not yet seen
           (case s.membership when 'member' then 1 when 'held_out' then 2 else 3 end)::utinyint as cls,
           {{ oriented_signals('s') }}
    from {{ ref('int_scores_membership') }} as s
    join changed as c on c.model = s.model and c.revision = s.revision and c.dataset = s.dataset
    where s.membership <> 'unknown'
),
lira as (
    -- one column per LiRA statistic and base signal (unpivoted below with the others)
    select c.unit_id, l.seq_idx,
    {%- for sig in lira_bases %}
           max(l.lira_online) filter (where l.signal = '{{ sig }}') as lira_online_{{ sig }},
           max(l.lira_offline) filter (where l.signal = '{{ sig }}') as lira_offline_{{ sig }}{{ ',' if not loop.last }}
    {%- endfor %}
    from {{ ref('int_lira_scores') }} as l
    join changed as c on c.model = l.model and c.revision = l.revision and c.dataset = l.dataset and c.has_lira
    where l.is_primary
    group by c.unit_id, l.seq_idx
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
    -- unpivoted by zipping two lists (signal number, value): no signal name per row; the LiRA
    -- statistics only in the rows of units that have them (no NULL score rows for the others)
    {%- set base_scores %}r.{{ lira_bases | join(', r.') }}
                       {%- if ref_unit %}, r.loss + x.ref_loss {#- -(loss - ref loss); r.loss is already -loss #}{% endif %}{% endset %}
    {%- set n_base = lira_bases | length + (1 if ref_unit else 0) %}
    select unit_id, cls, signal_id, score
    from (
        select r.unit_id, r.cls,
               unnest(case when r.has_lira then range(1, {{ signals | length + 1 }})::utinyint[]
                           else range(1, {{ n_base + 1 }})::utinyint[] end) as signal_id,
               unnest(case when r.has_lira
                           then [{{ base_scores }}
                                 {%- for sig in lira_bases %}, lr.lira_online_{{ sig }}, lr.lira_offline_{{ sig }}{% endfor %}]
                           else [{{ base_scores }}] end) as score
        from rows as r
        left join lira as lr on lr.unit_id = r.unit_id and lr.seq_idx = r.seq_idx
        {%- if ref_unit %}
        left join reference as x on x.seq_idx = r.seq_idx and x.dataset = r.dataset and not r.is_reference
        {%- endif %}
    )
    where score is not null
),
counts as materialized (
    -- members / held-out / not-yet-seen rows per distinct score of a unit's signal
    select unit_id, signal_id, score,
           (count(*) filter (where cls = 1))::integer as n_member,
           (count(*) filter (where cls = 2))::integer as n_held_out,
           (count(*) filter (where cls = 3))::integer as n_not_yet_seen
    from long
    group by all
),
cumulative as (
    -- one sort and running sum for both kinds of non-member: rows at or above each score, per
    -- class, and each class's total per unit and signal
    {{ cumulative_from_top('counts', ['unit_id', 'signal_id'], ['n_member', 'n_held_out', 'n_not_yet_seen']) }}
),
by_kind as not materialized (
    -- both kinds of non-member from one read of each row (a union would fan the rows out)
    select unit_id, unnest([1, 2]) as kind_id, signal_id as signal, score, n_member as n_pos,
           unnest([n_held_out, n_not_yet_seen]) as n_neg, ge_n_member as tp,
           unnest([ge_n_held_out, ge_n_not_yet_seen]) as fp, total_n_member as p,
           unnest([total_n_held_out, total_n_not_yet_seen]) as n
    from cumulative
),
metrics as (
    {{ separation_from_cumulative('by_kind', ['unit_id', 'kind_id'], signals.index('prefix_match_len') + 1) }}
)
select
    c.model, c.revision, c.dataset, c.separation_fingerprint,
    ['{{ signals | join("', '") }}'][m.signal] as signal,
    ['held_out', 'not_yet_seen'][m.kind_id] as nonmember_kind,
    m.n_pos as n_members, m.n_neg as n_nonmembers,
    m.* exclude (unit_id, kind_id, signal, n_pos, n_neg)
from metrics as m
join changed as c using (unit_id)
