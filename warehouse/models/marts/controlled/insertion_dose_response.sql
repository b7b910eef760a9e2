-- Controlled insertion (STUDIES §5; Hubble, TinyMem): per unit x category x duplication bin,
-- memorization rate (Wilson 95%) and mean loss (t 95%); for perturbed units with a standard
-- control (int_controlled_pairs: same family, size, revision, sequences and setting) the
-- control's rate and loss on the same sequences, and the paired differences:
--   rate_diff  Newcombe's method 10 for paired proportions (macros/intervals.sql)
--   loss_diff  mean of per-sequence (loss - control loss), paired t 95% interval
with seqs as (
    select * from {{ ref('int_scores_controlled') }} where duplicates is not null
),
cells as (
    select model, revision, dataset, category, duplicates_bin,
           min(duplicates) as min_duplicates, max(duplicates) as max_duplicates,
           count(*)::bigint as n_scored, count_if(is_memorized)::bigint as n_memorized,
           count(loss)::bigint as n_loss, avg(loss) as mean_loss, stddev_samp(loss) as sd_loss
    from seqs
    group by all
),
pairs as (
    select * from {{ ref('int_controlled_pairs') }}
),
paired as (
    select a.model, a.revision, a.dataset, a.category, a.duplicates_bin,
           count(*)::bigint as n_paired,
           count_if(a.is_memorized and b.is_memorized)::bigint as n11,
           count_if(a.is_memorized and not b.is_memorized)::bigint as n10,
           count_if(not a.is_memorized and b.is_memorized)::bigint as n01,
           count_if(not a.is_memorized and not b.is_memorized)::bigint as n00,
           avg(b.loss) as control_mean_loss,
           count(a.loss - b.loss)::bigint as n_loss_diff,
           avg(a.loss - b.loss) as loss_diff,
           stddev_samp(a.loss - b.loss) as sd_loss_diff
    from pairs as p
    join seqs as a on a.model = p.model and a.revision = p.revision and a.dataset = p.dataset
    join seqs as b on b.model = p.control_model and b.revision = p.control_revision and b.dataset = p.dataset
        and b.seq_idx = a.seq_idx
    group by all
)
select
    c.model,
    c.revision,
    c.dataset,
    u.family,
    u.n_params,
    u.step,
    r.role,
    c.category,
    c.duplicates_bin,
    c.min_duplicates,
    c.max_duplicates,
    {{ rate_and_loss_with_intervals('c') }},
    p.control_model,
    p.control_revision,
    x.n_paired,
    x.n11 + x.n01 as control_memorized,
    (x.n11 + x.n01)::double / x.n_paired as control_rate,
    {{ wilson_bound('x.n11 + x.n01', 'x.n_paired', '-') }} as control_rate_lo,
    {{ wilson_bound('x.n11 + x.n01', 'x.n_paired', '+') }} as control_rate_hi,
    x.control_mean_loss,
    (x.n10 - x.n01)::double / x.n_paired as rate_diff,
    {{ paired_rate_diff_bound('x.n11', 'x.n10', 'x.n01', 'x.n00', '-') }} as rate_diff_lo,
    {{ paired_rate_diff_bound('x.n11', 'x.n10', 'x.n01', 'x.n00', '+') }} as rate_diff_hi,
    x.loss_diff,
    {{ t_bound('x.loss_diff', 'x.sd_loss_diff', 'x.n_loss_diff', '-') }} as loss_diff_lo,
    {{ t_bound('x.loss_diff', 'x.sd_loss_diff', 'x.n_loss_diff', '+') }} as loss_diff_hi
from cells as c
join {{ ref('int_units') }} as u on u.model = c.model and u.revision = c.revision and u.dataset = c.dataset
join {{ ref('int_unit_roles') }} as r on r.model = c.model and r.revision = c.revision
left join pairs as p on p.model = c.model and p.revision = c.revision and p.dataset = c.dataset
left join paired as x
    on x.model = c.model and x.revision = c.revision and x.dataset = c.dataset
    and x.category = c.category and x.duplicates_bin = c.duplicates_bin
