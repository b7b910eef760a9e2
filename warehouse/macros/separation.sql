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

{% macro oriented_signal_list(alias='s') -%}
{#- The six oriented signals as one list, in signal_names() order (element i is signal id i):
    unnest it beside signal_ids() to unpivot without a name per row. -#}
[(-{{ alias }}.loss)::double, {{ alias }}.min_k_logprob::double, (-{{ alias }}.zlib_ratio)::double,
 {{ alias }}.tf_token_accuracy::double, {{ alias }}.prefix_match_len::double,
 {{ alias }}.memorization_score::double]
{%- endmacro %}

{% macro signal_ids(n=6) -%}
range(1, {{ n + 1 }})::utinyint[]
{%- endmacro %}

{% macro signal_name_of(id_expr) -%}
{#- The name of a signal id of oriented_signal_list() -#}
['{{ signal_names().split(', ') | join("', '") }}'][{{ id_expr }}]
{%- endmacro %}

{% macro signal_id_of(name) -%}
{{ signal_names().split(', ').index(name) + 1 }}
{%- endmacro %}

{% macro signal_names() -%}
loss, min_k_logprob, zlib_ratio, tf_token_accuracy, prefix_match_len, memorization_score
{%- endmacro %}

{% macro separation_metrics(counts, keys, binary_signal="'prefix_match_len'") -%}
{#- `counts`: a relation with the `keys` columns, `signal`, `score` (oriented, one row per
    distinct value within a group) and `n_pos` / `n_neg` (positives / negatives with that score).
    Cumulative counts from the top by one window, then separation_from_cumulative. -#}
{%- set k = keys | join(', ') -%}
with ranked as not materialized (
    select {{ k }}, signal, score, n_pos, n_neg,
           -- DOUBLE sums: exact below 2^53, several times faster than HUGEINT ones
           (sum(n_pos::double) over w)::bigint as tp,
           (sum(n_neg::double) over w)::bigint as fp
    from {{ counts }}
    window w as (partition by {{ k }}, signal order by score desc rows unbounded preceding)
)
select * from ({{ separation_from_cumulative('ranked', keys, binary_signal) }})
{%- endmacro %}

{% macro separation_from_cumulative(ranked, keys, binary_signal="'prefix_match_len'") -%}
{#- `ranked`: a relation with the `keys` columns, `signal`, `score` (oriented, one row per
    distinct value within a group), `n_pos` / `n_neg` (positives / negatives with that score)
    and `tp` / `fp` (positives / negatives with a score >= it); rows with no positive and no
    negative are ignored. `binary_signal`: the value of `signal` that is prefix_match_len.
    One row per group with both classes present:
      n_pos, n_neg; roc_auc = P(s+ > s-) + 0.5 P(s+ = s-) (exact, from integer counts);
      roc_auc_lo / _hi: 95% DeLong interval (placement values V10, V01 with ties 0.5, sample
      variances, var = var(V10)/P + var(V01)/N), clipped to [0, 1]; NULL when P or N is 1;
      tpr_at_fpr_0001 / _001 / _01: largest TPR among ROC points (every distinct threshold, plus
      (0, 0)) with FPR <= a; average_precision = sum_k (R_k - R_{k-1}) P_k (scikit-learn's);
      roc_points: the curve for charts, at most ~200 points (see below).
    Two passes over `ranked`, no window and no per-row state: the first gives each group's
    totals, the first point of each precision bin and the binary predictor's threshold; the
    second every metric and the chart points. The DeLong variances come from integer sums:
    with A = 2n V10 = 2(n - fp) + n_neg at a score and S1 = sum n_pos A, S2 = sum n_pos A^2
    (HUGEINT, exact), sum n_pos (V10 - auc)^2 = (P S2 - S1^2) / (4 n^2 P); the same for V01 with
    B = 2P V01 = 2 tp - n_pos over the negatives.
    Chart points kept (<= ~200 per curve): the first point entering each of 50 FPR bins, 50 TPR
    bins, 10 bins per decade of FPR over [1e-5, 1] (the log axis of membership plots) and 40
    precision bins; the first and the last point (1, 1); and the paper's binary predictor: for
    prefix_match_len, the point at the lowest threshold >= var memorized_min_tokens (predicted
    iff prefix_match_len >= it). FPR and TPR only grow along a curve, so the first point in one
    of their bins is the one whose bin differs from the previous point's (tp - n_pos,
    fp - n_neg); precision is not monotone: its first points come from the first pass. -#}
{%- set k = keys | join(', ') -%}
{%- set bin_applies = binary_predictor_applies() -%}
with pts as not materialized (
    select {{ k }}, signal, score, n_pos, n_neg, tp, fp
    from {{ ranked }}
    where n_pos + n_neg > 0
),
firsts as (
    select {{ k }}, signal, floor(tp::double / (tp + fp) * 40)::integer as pbin,
           grouping(floor(tp::double / (tp + fp) * 40)::integer) = 1 as is_total,
           max(tp) as p, max(fp) as n, max(score) as first_score,
           min(score) filter (where {{ bin_applies }} and signal = {{ binary_signal }}
                              and score >= {{ var('memorized_min_tokens', 32) }}) as bscore
    from pts
    group by grouping sets (({{ k }}, signal), ({{ k }}, signal, floor(tp::double / (tp + fp) * 40)::integer))
),
totals as materialized (
    -- one row per group; bin_first[b + 1] = the highest score in precision bin b (0..40), a
    -- list looked up by position rather than a join of every row
    select t.{{ keys | join(', t.') }}, t.signal, t.p, t.n, t.bscore,
           list_transform(range(0, 41), lambda i: list_filter(b.firsts, lambda f: f.pbin = i)[1].first_score) as bin_first
    from firsts as t
    join (select {{ k }}, signal, list({'pbin': pbin, 'first_score': first_score}) as firsts
          from firsts where not is_total group by all) as b
      on b.signal = t.signal {%- for c in keys %} and b.{{ c }} = t.{{ c }}{% endfor %}
    where t.is_total and t.p > 0 and t.n > 0
),
scored as not materialized (
    select x.*, t.p, t.n, coalesce(x.score = t.bscore, false) as is_binary_predictor,
           fp::double / t.n as fpr_, tp::double / t.p as tpr_, tp::double / (tp + fp) as prec_,
           (fp - n_neg)::double / t.n as prev_fpr, (tp - n_pos)::double / t.p as prev_tpr,
           t.bin_first[floor(tp::double / (tp + fp) * 40)::integer + 1] = x.score as first_in_precision_bin,
           2 * (t.n - x.fp) + x.n_neg as a2,  -- 2n V10 of a positive at this score
           2 * x.tp - x.n_pos as b2            -- 2P V01 of a negative at this score
    from pts as x
    join totals as t
      on t.signal = x.signal {%- for c in keys %} and t.{{ c }} = x.{{ c }}{% endfor %}
),
stats as (
    select
        {{ k }}, signal, any_value(p) as p, any_value(n) as n,
        sum(n_pos::hugeint * a2) as s1,
        sum(n_pos::hugeint * a2 * a2) as s2,
        sum(n_neg::hugeint * b2) as s3,
        sum(n_neg::hugeint * b2 * b2) as s4,
        coalesce(max(tpr_) filter (where fpr_ <= 0.001), 0) as tpr_at_fpr_0001,
        coalesce(max(tpr_) filter (where fpr_ <= 0.01), 0) as tpr_at_fpr_001,
        coalesce(max(tpr_) filter (where fpr_ <= 0.1), 0) as tpr_at_fpr_01,
        -- a sum of shares: rounding can pass 1 by an ulp (perfect separation); cap it there
        least(1.0, sum(n_pos::double / p * prec_)) as average_precision,
        bool_or(is_binary_predictor) as has_binary_point,
        list({'threshold': score, 'fp': fp::bigint, 'tp': tp::bigint, 'fpr': fpr_, 'tpr': tpr_,
              'precision': prec_, 'is_binary_predictor': is_binary_predictor} order by score desc)
          filter (where (tp = n_pos and fp = n_neg)
                     or floor(fpr_ * 50) <> floor(prev_fpr * 50)
                     or floor(tpr_ * 50) <> floor(prev_tpr * 50)
                     or floor(log10(greatest(fpr_, 1e-5)) * 10) <> floor(log10(greatest(prev_fpr, 1e-5)) * 10)
                     or (tp = p and fp = n)
                     or first_in_precision_bin
                     or is_binary_predictor) as points
    from scored
    group by {{ k }}, signal
),
metrics as (
    select *,
           s1::double / (2.0 * p::double * n::double) as roc_auc,
           case when p > 1 then (p * s2 - s1 * s1)::double
                / (4.0 * n::double * n::double * p::double * (p - 1)::double) end as var10,
           case when n > 1 then (n * s4 - s3 * s3)::double
                / (4.0 * p::double * p::double * n::double * (n - 1)::double) end as var01
    from stats
)
select
    {{ k }}, signal, p as n_pos, n as n_neg, roc_auc,
    -- greatest/least skip NULLs, so the interval is NULL explicitly when a variance is undefined
    case when var10 is not null and var01 is not null then
        greatest(0.0, roc_auc - 1.959963984540054 * sqrt(var10 / p + var01 / n)) end as roc_auc_lo,
    case when var10 is not null and var01 is not null then
        least(1.0, roc_auc + 1.959963984540054 * sqrt(var10 / p + var01 / n)) end as roc_auc_hi,
    tpr_at_fpr_0001, tpr_at_fpr_001, tpr_at_fpr_01, average_precision,
    -- (0, 0) first (threshold above every score): it is the binary predictor's point when no
    -- score reaches the threshold
    list_prepend(
        {'threshold': null::double, 'fp': 0::bigint, 'tp': 0::bigint, 'fpr': 0.0::double,
         'tpr': 0.0::double, 'precision': null::double,
         'is_binary_predictor': {{ bin_applies }} and signal = {{ binary_signal }}
                                and not coalesce(has_binary_point, false)},
        points
    ) as roc_points
from metrics
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
