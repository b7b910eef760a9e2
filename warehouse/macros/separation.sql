{# How well a per-sequence signal separates two classes (STUDIES §2-3), shared by the
   membership-inference and memorization-forecast models. #}

{% macro oriented_signals(alias='s') -%}
{#- The six scored signals as DOUBLE columns named for the signal, oriented so that higher
    means "more likely member / memorized" (STUDIES §2): loss and zlib_ratio are negated. -#}
    (-{{ alias }}.loss)::double as loss,
    {{ alias }}.min_k_logprob::double as min_k_logprob,
    (-{{ alias }}.zlib_ratio)::double as zlib_ratio,
    {{ alias }}.tf_token_accuracy::double as tf_token_accuracy,
    {{ alias }}.prefix_match_len::double as prefix_match_len,
    {{ alias }}.memorization_score::double as memorization_score
{%- endmacro %}

{% macro signal_names() -%}
loss, min_k_logprob, zlib_ratio, tf_token_accuracy, prefix_match_len, memorization_score
{%- endmacro %}

{% macro separation_metrics(counts, keys) -%}
{#- `counts`: a relation with the `keys` columns, `signal`, `score` (oriented, one row per
    distinct value within a group) and `n_pos` / `n_neg` (positives / negatives with that score).
    One row per group with both classes present:
      n_pos, n_neg; roc_auc = P(s+ > s-) + 0.5 P(s+ = s-) (exact, from integer counts);
      roc_auc_lo / _hi: 95% DeLong interval (placement values V10, V01 with ties 0.5, sample
      variances, var = var(V10)/P + var(V01)/N), clipped to [0, 1]; NULL when P or N is 1;
      tpr_at_fpr_0001 / _001 / _01: largest TPR among ROC points (every distinct threshold, plus
      (0, 0)) with FPR <= a; average_precision = sum_k (R_k - R_{k-1}) P_k (scikit-learn's);
      roc_points: the curve for charts, at most ~200 points (see separation_curve_keep). -#}
{%- set k = keys | join(', ') -%}
with ranked as (
    select
        {{ k }}, signal, score, n_pos, n_neg,
        (sum(n_pos) over w)::bigint as tp,
        (sum(n_neg) over w)::bigint as fp,
        (sum(n_pos) over g)::bigint as p,
        (sum(n_neg) over g)::bigint as n,
        row_number() over w as r
    from {{ counts }}
    window w as (partition by {{ k }}, signal order by score desc rows unbounded preceding),
           g as (partition by {{ k }}, signal)
),
valid as (
    select * from ranked where p > 0 and n > 0
),
placed as (
    select
        *,
        -- AUC numerator x 2: positives at this score beat the negatives below, tie the ones here
        n_pos::hugeint * (2 * (n - fp) + n_neg) as auc_num2,
        (n - fp + 0.5 * n_neg) / n as v10,  -- share of negatives below a positive at this score
        (tp - 0.5 * n_pos) / p as v01       -- share of positives above a negative at this score
    from valid
),
auc as (
    select {{ k }}, signal, any_value(p) as p, any_value(n) as n,
           (sum(auc_num2)::double / (2.0 * any_value(p)::double * any_value(n)::double)) as roc_auc
    from placed group by all
),
stats as (
    select
        a.{{ keys | join(', a.') }}, a.signal, a.p as n_pos, a.n as n_neg, a.roc_auc,
        sum(x.n_pos * (x.v10 - a.roc_auc) ^ 2) / nullif(a.p - 1, 0) as var10,
        sum(x.n_neg * (x.v01 - a.roc_auc) ^ 2) / nullif(a.n - 1, 0) as var01,
        coalesce(max(x.tp::double / x.p) filter (where x.fp::double / x.n <= 0.001), 0) as tpr_at_fpr_0001,
        coalesce(max(x.tp::double / x.p) filter (where x.fp::double / x.n <= 0.01), 0) as tpr_at_fpr_001,
        coalesce(max(x.tp::double / x.p) filter (where x.fp::double / x.n <= 0.1), 0) as tpr_at_fpr_01,
        -- a sum of shares: rounding can pass 1 by an ulp (perfect separation); cap it there
        least(1.0, sum(x.n_pos::double / x.p * (x.tp::double / (x.tp + x.fp)))) as average_precision
    from auc as a
    join placed as x using ({{ k }}, signal)
    group by a.{{ keys | join(', a.') }}, a.signal, a.p, a.n, a.roc_auc
),
kept as (
    {{ separation_curve_keep('placed', keys) }}
),
curve as (
    -- (0, 0) first (threshold above every score): it is the binary predictor's point when no
    -- score reaches the threshold
    select {{ k }}, signal,
           list_prepend(
               {'threshold': null::double, 'fp': 0::bigint, 'tp': 0::bigint, 'fpr': 0.0::double,
                'tpr': 0.0::double, 'precision': null::double,
                'is_binary_predictor': {{ binary_predictor_applies() }} and signal = 'prefix_match_len'
                                       and not bool_or(is_binary_predictor)},
               list({'threshold': score, 'fp': fp::bigint, 'tp': tp::bigint, 'fpr': fpr_, 'tpr': tpr_,
                     'precision': prec_, 'is_binary_predictor': is_binary_predictor}
                    order by r) filter (where keep)
           ) as roc_points
    from kept
    group by {{ k }}, signal
)
select
    s.{{ keys | join(', s.') }}, s.signal, s.n_pos, s.n_neg, s.roc_auc,
    -- greatest/least skip NULLs, so the interval is NULL explicitly when a variance is undefined
    case when s.var10 is not null and s.var01 is not null then
        greatest(0.0, s.roc_auc - 1.959963984540054 * sqrt(s.var10 / s.n_pos + s.var01 / s.n_neg)) end as roc_auc_lo,
    case when s.var10 is not null and s.var01 is not null then
        least(1.0, s.roc_auc + 1.959963984540054 * sqrt(s.var10 / s.n_pos + s.var01 / s.n_neg)) end as roc_auc_hi,
    s.tpr_at_fpr_0001, s.tpr_at_fpr_001, s.tpr_at_fpr_01, s.average_precision,
    c.roc_points
from stats as s
join curve as c using ({{ k }}, signal)
{%- endmacro %}

{% macro separation_curve_keep(placed, keys) -%}
{#- Which ROC / precision-recall points a chart needs (<= ~200 per curve): the first point
    entering each of 50 FPR bins, 50 TPR bins, 10 bins per decade of FPR over [1e-5, 1] (the
    log axis of membership plots) and 40 precision bins; the last point (1, 1); and the paper's
    binary predictor: for prefix_match_len, the point at the lowest threshold >=
    var memorized_min_tokens (predicted iff prefix_match_len >= it). -#}
{%- set k = keys | join(', ') -%}
{#- FPR and TPR only grow along a curve, so the first point entering one of their bins is the
    point whose bin differs from the previous point's, known from the row itself (previous tp/fp
    = tp - n_pos, fp - n_neg): no pass over the rows per bin kind. Precision is not monotone; its
    bins keep one hash aggregate (the first point entering each). -#}
with pts as (
    select {{ k }}, signal, r, score, fp, tp, p, n,
           fp::double / n as fpr_, tp::double / p as tpr_, tp::double / (tp + fp) as prec_,
           (fp - n_neg)::double / n as prev_fpr, (tp - n_pos)::double / p as prev_tpr
    from {{ placed }}
),
binary_threshold as (
    select {{ k }}, signal, min(score) as bscore
    from pts
    where {{ binary_predictor_applies() }} and signal = 'prefix_match_len'
      and score >= {{ var('memorized_min_tokens', 32) }}
    group by {{ k }}, signal
),
first_in_precision_bin as (
    select {{ k }}, signal, min(r) as r, true as first_in_precision_bin
    from pts group by {{ k }}, signal, floor(prec_ * 40)
)
select p.* exclude (p, n, prev_fpr, prev_tpr),
       coalesce(p.score = b.bscore, false) as is_binary_predictor, true as keep
from pts as p
left join first_in_precision_bin as f using ({{ k }}, signal, r)
left join binary_threshold as b using ({{ k }}, signal)
where p.r = 1
   or floor(p.fpr_ * 50) <> floor(p.prev_fpr * 50)
   or floor(p.tpr_ * 50) <> floor(p.prev_tpr * 50)
   or floor(log10(greatest(p.fpr_, 1e-5)) * 10) <> floor(log10(greatest(p.prev_fpr, 1e-5)) * 10)
   or (p.tp = p.p and p.fp = p.n)
   or f.first_in_precision_bin
   or p.score = b.bscore
{%- endmacro %}

{% macro binary_predictor_applies() -%}
{#- The paper's binary predictor is prefix_match_len >= memorized_min_tokens only under the
    prefix_match label definition. -#}
{{ 'true' if var('label_definition', 'prefix_match') == 'prefix_match' else 'false' }}
{%- endmacro %}

{% macro forecast_pairs() -%}
{#- Predictor -> target pairs of int_prediction_pairs between dense units, with the fingerprint
    of what their forecast rows depend on (both units' rows and labels, the population cut). -#}
select
    p.dataset, p.predictor_model, p.predictor_revision, p.target_model, p.target_revision,
    p.population_seq_limit,
    md5(pu.unit_fingerprint || '|' || tu.unit_fingerprint || '|'
        || coalesce(p.population_seq_limit::varchar, 'all')) as forecast_fingerprint
from {{ ref('int_prediction_pairs') }} as p
join {{ ref('int_units') }} as pu
  on pu.model = p.predictor_model and pu.revision = p.predictor_revision and pu.dataset = p.dataset
join {{ ref('int_units') }} as tu
  on tu.model = p.target_model and tu.revision = p.target_revision and tu.dataset = p.dataset
where not pu.is_sparse and not tu.is_sparse
{%- endmacro %}

{% macro delete_stale_forecast_pairs() -%}
delete from {{ this }} as t
where not exists (
    select 1 from ({{ forecast_pairs() }}) as p
    where p.dataset = t.dataset and p.predictor_model = t.predictor_model and p.predictor_revision = t.predictor_revision
      and p.target_model = t.target_model and p.target_revision = t.target_revision
      and p.forecast_fingerprint = t.forecast_fingerprint)
{%- endmacro %}
