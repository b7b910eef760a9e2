-- Agreement of memorization labels between two units over their common population (the pairs
-- of int_unit_pair_scope: sizes on one scaling ladder at one revision, within one setting, checkpoints of one model),
-- listed in both orders (a -> b and b -> a) so a heatmap or `where model_a = ...` needs no union.
with p as (
    select dataset, model_a, revision_a, model_b, revision_b, n_common, n_a, n_b, n_both, n_pearson,
           pearson_prefix_match_len
    from {{ ref('int_unit_pairs') }}
),
both_orders as (
    select * from p
    union all
    select dataset, model_b, revision_b, model_a, revision_a, n_common, n_b, n_a, n_both, n_pearson,
           pearson_prefix_match_len
    from p
)
select
    dataset, model_a, revision_a, model_b, revision_b, n_common::bigint as n_common, n_a, n_b, n_both,
    n_both::double / nullif(n_a + n_b - n_both, 0) as jaccard,
    -- Jaccard = share of the union memorized by both: Wilson 95% of n_both out of the union,
    -- conditional on the union's size (an approximation; see the column docs).
    {{ wilson_bound('n_both', 'n_a + n_b - n_both', '-') }} as jaccard_lo,
    {{ wilson_bound('n_both', 'n_a + n_b - n_both', '+') }} as jaccard_hi,
    case when n_common > 0 then
        ((n_common - n_a - n_b + 2 * n_both)::double / n_common
          - (n_a::double * n_b + (n_common - n_a)::double * (n_common - n_b)) / (n_common::double * n_common))
        / nullif(1 - (n_a::double * n_b + (n_common - n_a)::double * (n_common - n_b)) / (n_common::double * n_common), 0)
    end as cohen_kappa,
    pearson_prefix_match_len,
    n_pearson
from both_orders
