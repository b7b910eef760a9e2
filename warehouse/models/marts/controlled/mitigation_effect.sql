-- Mitigation before/after (STUDIES §7, TinyMem): per (base, edited) pair, i.e. each unit with
-- role 'edited' and its variant_of on the same dataset, over the sequences both scored with the same setting
-- (dataset, prompt_len, cont_len, EOS rule; plus mode when labels come from the fractional
-- score). Pairs scored otherwise are left out (never compared across settings).
--   removed        base memorized, edited not (share of base memorized, Wilson 95%)
--   newly          edited memorized, base not
--   loss change    mean per-sequence (edited loss - base loss), paired t 95%, on sequences
--                  neither memorizes and on the base's held-out sequences (exposure: never
--                  trained); perplexity ratio exp(change) with exp of the bounds.
{%- set pairs_sql -%}
    select e.model, e.revision, e.base_model, e.base_revision, e.method, e.method_params, ue.dataset
    from {{ ref('int_unit_roles') }} as e
    join {{ ref('int_units') }} as ue on ue.model = e.model and ue.revision = e.revision
    join {{ ref('int_units') }} as ub
      on ub.model = e.base_model and ub.revision = e.base_revision and ub.dataset = ue.dataset
    where e.role = 'edited' and e.base_model is not null
      and not ue.is_sparse and not ub.is_sparse
      and ue.prompt_len = ub.prompt_len and ue.cont_len = ub.cont_len
      and ue.suppress_eos is not distinct from ub.suppress_eos
      {% if var('label_definition', 'prefix_match') == 'score' %}and ue.mode = ub.mode{% endif %}
{%- endset -%}
{#- The score scans below list the pairs' units as literal predicates: a join alone would still
    read (and DuckDB materialize) every unit's rows, ~1 min at 80M rows with no edited unit. -#}
{%- set pair_units -%}
select model, revision, dataset from ({{ pairs_sql }}) union select base_model, base_revision, dataset from ({{ pairs_sql }})
{%- endset %}
with pairs as (
    select model, revision, dataset, base_model, base_revision, method, method_params
    from ({{ pairs_sql }})
),
base_membership as (
    select m.model, m.revision, m.dataset, m.seq_idx, m.membership
    from {{ ref('int_scores_membership') }} as m
    where (m.model, m.revision, m.dataset) in (select (base_model, base_revision, dataset) from pairs)
      and {{ units_scan_filter('m.model', 'm.revision', 'm.dataset', pair_units) }}
),
seqs as (
    select p.model, p.revision, p.dataset, b.seq_idx,
           b.is_memorized as base_mem, e.is_memorized as edit_mem,
           e.loss - b.loss as loss_change,
           coalesce(bm.membership = 'held_out', false) as is_held_out
    from pairs as p
    join {{ ref('int_scores_labeled') }} as b
        on b.model = p.base_model and b.revision = p.base_revision and b.dataset = p.dataset
    join {{ ref('int_scores_labeled') }} as e
        on e.model = p.model and e.revision = p.revision and e.dataset = p.dataset
        and e.seq_idx = b.seq_idx
        and {{ units_scan_filter('e.model', 'e.revision', 'e.dataset', pair_units) }}
    left join base_membership as bm
        on bm.model = p.base_model and bm.revision = p.base_revision and bm.dataset = p.dataset
        and bm.seq_idx = b.seq_idx
    where {{ units_scan_filter('b.model', 'b.revision', 'b.dataset', pair_units) }}
),
agg as (
    select model, revision, dataset,
           count(*)::bigint as n_common,
           count_if(base_mem)::bigint as base_memorized,
           count_if(edit_mem)::bigint as edited_memorized,
           count_if(base_mem and not edit_mem)::bigint as n_removed,
           count_if(edit_mem and not base_mem)::bigint as n_newly_memorized,
           count(loss_change) filter (where not base_mem and not edit_mem) as n_neither,
           avg(loss_change) filter (where not base_mem and not edit_mem) as loss_change_neither,
           stddev_samp(loss_change) filter (where not base_mem and not edit_mem) as sd_neither,
           count(loss_change) filter (where is_held_out) as n_held_out,
           avg(loss_change) filter (where is_held_out) as loss_change_held_out,
           stddev_samp(loss_change) filter (where is_held_out) as sd_held_out
    from seqs
    group by model, revision, dataset
)
select
    p.dataset,
    p.base_model,
    p.base_revision,
    p.model as edited_model,
    p.revision as edited_revision,
    p.method,
    p.method_params,
    a.n_common,
    a.base_memorized,
    a.edited_memorized,
    a.n_removed,
    a.n_removed::double / nullif(a.base_memorized, 0) as removed_share,
    {{ wilson_bound('a.n_removed', 'a.base_memorized', '-') }} as removed_share_lo,
    {{ wilson_bound('a.n_removed', 'a.base_memorized', '+') }} as removed_share_hi,
    a.n_newly_memorized,
    a.n_neither,
    a.loss_change_neither,
    {{ t_bound('a.loss_change_neither', 'a.sd_neither', 'a.n_neither', '-') }} as loss_change_neither_lo,
    {{ t_bound('a.loss_change_neither', 'a.sd_neither', 'a.n_neither', '+') }} as loss_change_neither_hi,
    exp(a.loss_change_neither) as perplexity_ratio_neither,
    exp({{ t_bound('a.loss_change_neither', 'a.sd_neither', 'a.n_neither', '-') }}) as perplexity_ratio_neither_lo,
    exp({{ t_bound('a.loss_change_neither', 'a.sd_neither', 'a.n_neither', '+') }}) as perplexity_ratio_neither_hi,
    nullif(a.n_held_out, 0) as n_held_out,
    a.loss_change_held_out,
    {{ t_bound('a.loss_change_held_out', 'a.sd_held_out', 'a.n_held_out', '-') }} as loss_change_held_out_lo,
    {{ t_bound('a.loss_change_held_out', 'a.sd_held_out', 'a.n_held_out', '+') }} as loss_change_held_out_hi,
    exp(a.loss_change_held_out) as perplexity_ratio_held_out,
    exp({{ t_bound('a.loss_change_held_out', 'a.sd_held_out', 'a.n_held_out', '-') }}) as perplexity_ratio_held_out_lo,
    exp({{ t_bound('a.loss_change_held_out', 'a.sd_held_out', 'a.n_held_out', '+') }}) as perplexity_ratio_held_out_hi
from pairs as p
join agg as a on a.model = p.model and a.revision = p.revision and a.dataset = p.dataset
