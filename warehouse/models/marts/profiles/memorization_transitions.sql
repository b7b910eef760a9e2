-- Memorization over training (STUDIES §6): per model and pair of consecutive scored checkpoints
-- (by step), how the memorized label moved over the sequences both scored:
-- newly memorized (0 -> 1), kept (1 -> 1), forgotten (1 -> 0), never (0 -> 0).
-- Read from the incremental pair counts (int_unit_pairs: n_common, memorized by each, by both),
-- so a new checkpoint adds one pair and recomputes nothing else. Units without a step are left out.
with ck as (
    select model, revision, dataset, step,
           lead(revision) over w as next_revision,
           lead(step) over w as next_step
    from {{ ref('int_units') }}
    where step is not null
    window w as (partition by model, dataset order by step, revision)
),
steps as (
    select * from ck where next_revision is not null
),
pairs as (
    -- int_unit_pairs holds each unordered pair once (a < b): orient it from -> to
    select s.model, s.dataset, s.revision as from_revision, s.step as from_step,
           s.next_revision as to_revision, s.next_step as to_step,
           p.n_common,
           case when p.revision_a = s.revision then p.n_a else p.n_b end as n_from,
           case when p.revision_a = s.revision then p.n_b else p.n_a end as n_to,
           p.n_both
    from steps as s
    join {{ ref('int_unit_pairs') }} as p
      on p.dataset = s.dataset and p.model_a = s.model and p.model_b = s.model
     and ((p.revision_a = s.revision and p.revision_b = s.next_revision)
       or (p.revision_b = s.revision and p.revision_a = s.next_revision))
)
select
    model, dataset, from_revision, from_step, to_revision, to_step,
    n_common::bigint as n_both_scored,
    n_from::bigint as n_memorized_from,
    n_to::bigint as n_memorized_to,
    (n_to - n_both)::bigint as n_newly_memorized,
    n_both::bigint as n_kept,
    (n_from - n_both)::bigint as n_forgotten,
    (n_common - n_from - n_to + n_both)::bigint as n_never
from pairs
