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

{% macro cumulative_from_top(relation, keys, cols, next_higher=false) -%}
{#- `relation`: a CTE with the integer `keys` columns, `score` (distinct within keys, not NULL)
    and the count columns `cols`. Per row: ge_<col> = the sum of <col> over the rows of its keys
    with a score >= its own, total_<col> = the sum over all of them, lowest_score = their lowest
    score, and (next_higher) the next higher score of its keys (NULL at the top). Exact while
    the sums stay below 2^53 (DOUBLE running sums: DuckDB sums integers into HUGEINT, ~2x
    slower).
    Why not `sum() over (partition by keys order by score desc)`: DuckDB evaluates a framed
    window sum with a segment tree, ~4x the cost of a sort (the 10M-row membership benchmark
    spent ~36 CPU s there). Here: one ORDER BY, then running sums and a row number over the
    sorted rows (empty OVER clauses: DuckDB's streaming window, one pass), less the sums of the
    key groups sorted before. Each row finds its group's totals in one list, by a slot computed
    from its keys (a join would do, but DuckDB estimates CTE sizes so badly that it may build
    the hash table on the big side). The running sums read the rows in the ORDER BY's order;
    each row is checked (its row number lies in its group's range, and its score is below the
    previous row's unless it is the group's first), so the build fails rather than count
    wrongly should an engine ever deliver them otherwise. `relation` is read twice (the sort
    and the group totals): make it a materialized CTE. -#}
{%- set k = keys | join(', ') -%}
{#- slot of a key tuple: 1 + sum_i (k_i - lo_i) * prod_{j > i} span_j, over the keys' ranges -#}
{%- set ns = namespace(slot='1', stride='') -%}
{%- for c in keys | reverse -%}
    {%- set ns.slot = ns.slot ~ ' + (@.' ~ c ~ ' - gl.lo_' ~ c ~ ')' ~ ns.stride -%}
    {%- set ns.stride = ns.stride ~ ' * gl.span_' ~ c -%}
{%- endfor %}
select s.* exclude ({% for c in cols %}run_{{ c }}, {% endfor %}prev_score, row_no, g),
{%- if next_higher %}
       case when s.row_no > s.g.first_row then s.prev_score end as next_higher,
{%- endif %}
{%- for c in cols %}
       (s.run_{{ c }} - s.g.before_{{ c }})::bigint as ge_{{ c }}, s.g.total_{{ c }},
{%- endfor %}
       s.g.lowest_score
from (
    select r.*, gl.groups[{{ ns.slot | replace('@', 'r') }}] as g
    from (
        select *,
        {%- for c in cols %}
               sum({{ c }}::double) over (rows between unbounded preceding and current row) as run_{{ c }},
        {%- endfor %}
               count(*) over (rows between unbounded preceding and current row) as row_no,
               lag(score) over () as prev_score
        from (select * from {{ relation }} order by {{ k }}, score desc)
    ) as r
    cross join (
        -- per key group (in key order): its rows, its first row's number, its totals and the
        -- sums of the groups before it; as a list indexed by slot (NULL where no group)
        with grp as (
            select {{ k }}, min(score) as lowest_score, count(*) as n_rows,
                   (coalesce(sum(count(*)) over w, 0) + 1)::bigint as first_row,
            {%- for c in cols %}
                   sum({{ c }})::bigint as total_{{ c }},
                   coalesce(sum(sum({{ c }}::double)) over w, 0) as before_{{ c }}{{ ',' if not loop.last }}
            {%- endfor %}
            from {{ relation }}
            group by {{ k }}
            window w as (order by {{ k }} rows between unbounded preceding and 1 preceding)
        ),
        bounds as (
            select {% for c in keys %}min({{ c }})::bigint as lo_{{ c }}, max({{ c }})::bigint - min({{ c }}) + 1 as span_{{ c }}{{ ', ' if not loop.last }}{% endfor %}
            from grp
        ),
        slotted as (
            select {{ ns.slot | replace('@', 'x') }} as slot,
                   {'n_rows': x.n_rows, 'first_row': x.first_row, 'lowest_score': x.lowest_score
                    {%- for c in cols %}, 'total_{{ c }}': x.total_{{ c }}, 'before_{{ c }}': x.before_{{ c }}{% endfor %}} as info
            from grp as x, bounds as gl
        )
        select gl.*, (select list(sl.info order by t.i)
                      from (select unnest(range(1, (select max(slot) from slotted) + 1)) as i) as t
                      left join slotted as sl on sl.slot = t.i) as groups
        from bounds as gl
    ) as gl
) as s
-- in order: each row within its group's range of row numbers, below the previous row's score
-- unless it is its group's first
where coalesce(s.row_no between s.g.first_row and s.g.first_row + s.g.n_rows - 1
               and (s.row_no = s.g.first_row or s.prev_score > s.score), false)
   or error('cumulative_from_top: rows of {{ relation }} reached the running sums out of order')
{%- endmacro %}

{% macro separation_metrics(counts, keys, binary_signal="'prefix_match_len'") -%}
{#- `counts`: a CTE with the `keys` columns, `signal`, `score` (oriented, one row per distinct
    value within a group) and `n_pos` / `n_neg` (positives / negatives with that score).
    Cumulative counts from the top (cumulative_from_top), then separation_from_cumulative. -#}
with ranked as not materialized (
    select {{ keys | join(', ') }}, signal, score, n_pos, n_neg,
           ge_n_pos as tp, ge_n_neg as fp, total_n_pos as p, total_n_neg as n
    from ({{ cumulative_from_top(counts, keys + ['signal'], ['n_pos', 'n_neg']) }})
)
select * from ({{ separation_from_cumulative('ranked', keys, binary_signal) }})
{%- endmacro %}

{% macro separation_from_cumulative(ranked, keys, binary_signal="'prefix_match_len'") -%}
{#- `ranked`: a relation with the `keys` columns, `signal`, `score` (oriented, one row per
    distinct value within a group), `n_pos` / `n_neg` (positives / negatives with that score),
    `tp` / `fp` (positives / negatives with a score >= it) and `p` / `n` (the group's positives
    and negatives); rows with no positive and no negative are ignored. `binary_signal`: the
    value of `signal` that is prefix_match_len.
    One row per group with both classes present:
      n_pos, n_neg; roc_auc = P(s+ > s-) + 0.5 P(s+ = s-) (exact, from integer counts);
      roc_auc_lo / _hi: 95% DeLong interval (placement values V10, V01 with ties 0.5, sample
      variances, var = var(V10)/P + var(V01)/N), clipped to [0, 1]; NULL when P or N is 1;
      tpr_at_fpr_0001 / _001 / _01: largest TPR among ROC points (every distinct threshold, plus
      (0, 0)) with FPR <= a; average_precision = sum_k (R_k - R_{k-1}) P_k (scikit-learn's);
      roc_points: the curve for charts, at most ~200 points (see below).
    One aggregate pass over `ranked`, no window, join or sort per row: grouped by curve and
    precision bin (~41 rows per curve), then the bins of a curve combined. The DeLong variances
    come from integer sums: with A = 2n V10 = 2(n - fp) + n_neg = 2n + c (c = n_neg - 2 fp) at a
    score, S1 = sum n_pos A = 2nP + sum n_pos c and S2 = sum n_pos A^2 = 4n^2 P + 4n sum n_pos c
    + sum n_pos c^2 (HUGEINT, exact), sum n_pos (V10 - auc)^2 = (P S2 - S1^2) / (4 n^2 P); the
    same for V01 with B = 2P V01 = 2 tp - n_pos over the negatives.
    Chart points kept (<= ~200 per curve): the first point entering each of 50 FPR bins, 50 TPR
    bins, 10 bins per decade of FPR over [1e-5, 1] (the log axis of membership plots) and 40
    precision bins; the first and the last point (1, 1); and the paper's binary predictor: for
    prefix_match_len, the point at the lowest threshold >= var memorized_min_tokens (predicted
    iff prefix_match_len >= it). FPR and TPR only grow along a curve, so the first point in one
    of their bins is the one whose bin differs from the previous point's (tp - n_pos,
    fp - n_neg); precision is not monotone: its first points are each precision bin's highest
    score (the aggregate is grouped by that bin). -#}
{%- set k = keys | join(', ') -%}
{%- set bin_applies = binary_predictor_applies() -%}
with scored as not materialized (
    select {{ k }}, signal, score, n_pos, n_neg, tp, fp, p, n,
           fp::double / n as fpr_, tp::double / p as tpr_, tp::double / (tp + fp) as prec_,
           floor(tp::double / (tp + fp) * 40)::integer as pbin,
           {'threshold': score, 'tp': tp, 'fp': fp} as pt,
           -- (the FPR bins move only with negatives, the TPR bins only with positives: CASE
           -- spares the other rows the arithmetic)
           (tp = n_pos and fp = n_neg)
             or (tp = p and fp = n)
             or case when n_neg > 0
                     then floor(fp::double / n * 50) <> floor((fp - n_neg)::double / n * 50)
                          or floor(log10(greatest(fp::double / n, 1e-5)) * 10)
                             <> floor(log10(greatest((fp - n_neg)::double / n, 1e-5)) * 10)
                     else false end
             or case when n_pos > 0
                     then floor(tp::double / p * 50) <> floor((tp - n_pos)::double / p * 50)
                     else false end as is_chart_point,
           {{ bin_applies }} and signal = {{ binary_signal }}
             and score >= {{ var('memorized_min_tokens', 32) }} as predicts_memorized,
           n_neg - 2 * fp as c,  -- 2n V10 of a positive at this score, less 2n
           2 * tp - n_pos as b2   -- 2P V01 of a negative at this score
    from {{ ranked }}
    where n_pos + n_neg > 0 and p > 0 and n > 0
),
by_bin as (
    select
        {{ k }}, signal, pbin, any_value(p) as p, any_value(n) as n,
        -- products in BIGINT where they fit (|c|, |b2| <= 3 x a class's rows; past ~1e9 rows
        -- per class DuckDB raises an overflow error rather than wrap), summed as HUGEINT
        sum(n_pos * c) as s1c,
        sum(n_pos * (c * c)::hugeint) as s2c,
        sum(n_neg * b2) as s3,
        sum(n_neg * (b2 * b2)::hugeint) as s4,
        max(tpr_) filter (where fpr_ <= 0.001) as tpr_at_fpr_0001,
        max(tpr_) filter (where fpr_ <= 0.01) as tpr_at_fpr_001,
        max(tpr_) filter (where fpr_ <= 0.1) as tpr_at_fpr_01,
        sum(n_pos::double / p * prec_) as ap,
        -- tp and fp only grow as the score falls: a bin's first point (highest score) has the
        -- smallest of both, the binary predictor's (lowest qualifying score) the largest
        {'threshold': max(score), 'tp': min(tp), 'fp': min(fp)} as first_pt,
        min(score) filter (where predicts_memorized) as bscore,
        {'threshold': min(score) filter (where predicts_memorized),
         'tp': max(tp) filter (where predicts_memorized),
         'fp': max(fp) filter (where predicts_memorized)} as bpt,
        list(pt) filter (where is_chart_point) as pts
    from scored
    group by all
),
stats as (
    select
        {{ k }}, signal, p, n,
        2 * n::hugeint * p + sum(s1c) as s1,
        4 * n::hugeint * n * p + 4 * n::hugeint * sum(s1c) + sum(s2c) as s2,
        sum(s3) as s3,
        sum(s4) as s4,
        coalesce(max(tpr_at_fpr_0001), 0) as tpr_at_fpr_0001,
        coalesce(max(tpr_at_fpr_001), 0) as tpr_at_fpr_001,
        coalesce(max(tpr_at_fpr_01), 0) as tpr_at_fpr_01,
        -- a sum of shares: rounding can pass 1 by an ulp (perfect separation); cap it there
        least(1.0, sum(ap)) as average_precision,
        min(bscore) as bscore,
        -- every bin's chart points, its first point and the binary predictor's (one of them)
        list_sort(list_distinct(list_concat(flatten(list(pts)), list(first_pt),
                                            list(bpt) filter (where bpt.threshold is not null))), 'DESC') as pts
    from by_bin
    group by {{ k }}, signal, p, n
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
         'is_binary_predictor': {{ bin_applies }} and signal = {{ binary_signal }} and bscore is null},
        list_transform(pts, lambda x: {
            'threshold': x.threshold, 'fp': x.fp::bigint, 'tp': x.tp::bigint,
            'fpr': x.fp::double / n, 'tpr': x.tp::double / p,
            'precision': x.tp::double / (x.tp + x.fp),
            'is_binary_predictor': coalesce(x.threshold = bscore, false)})
    ) as roc_points
from metrics
{%- endmacro %}

{% macro disable_common_subplans() -%}
{#- pre_hook of the separation models (their post_hook resets it): DuckDB's common-subplan
    optimizer sees the score rows read by several branches (a unit's rows and the LiRA view
    over the same rows; a predictor's rows, its positives and the row-join path) and
    materializes the whole scan once for all of them (every unit's rows and columns: 20M rows
    and ~2.5 GB of the 10M-row benchmark's 6 GB) before each branch filters it down to a few
    rows; read apart, each branch scans only what it needs. -#}
set disabled_optimizers = 'common_subplan'
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
