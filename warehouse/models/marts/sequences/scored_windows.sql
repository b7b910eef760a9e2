{{ config(materialized='view') }}
-- Every scored (unit, sequence) with its tokens, ready to read: prompt, true continuation, the
-- generation when it was saved, where greedy decoding first departs from the truth, and the
-- build's memorization label. A view: the tokens live once per dataset in
-- stg_memwh__sequence_windows; copying them per unit would multiply the largest table by the
-- number of units. Filter on model/revision/is_memorized (pushed down to the scan).
with scored as (
    select s.model, s.revision, s.dataset, s.seq_idx, s.prefix_match_len, s.memorization_score, s.loss,
           s.is_memorized, s.label_certain, s.label_verified, r.data_fingerprint, r.prompt_len, r.cont_len
    from {{ ref('int_scores_labeled') }} s
    left join {{ ref('stg_memwh__runs') }} r on r.run_id = s.run_id
)
select
    l.model,
    l.revision,
    l.dataset,
    l.seq_idx,
    l.is_memorized,
    l.data_fingerprint,
    l.prompt_len,
    l.cont_len,
    l.prefix_match_len,
    l.memorization_score,
    l.loss,
    l.label_certain,
    l.label_verified,
    case when l.prefix_match_len < l.cont_len then l.prefix_match_len end as first_mismatch,
    w.tokens[1:l.prompt_len] as prompt_tokens,
    w.tokens[l.prompt_len + 1:l.prompt_len + l.cont_len] as continuation_tokens,
    g.generated_tokens,
    q.duplicates,
    q.is_canary,
    w.tokens is not null as has_tokens
from scored l
left join {{ ref('stg_memwh__sequence_windows') }} w
  on w.data_fingerprint = l.data_fingerprint and w.seq_idx = l.seq_idx
 and len(w.tokens) >= l.prompt_len + l.cont_len
left join {{ ref('stg_memwh__generations') }} g
  on g.model = l.model and g.revision = l.revision and g.dataset = l.dataset and g.seq_idx = l.seq_idx
left join {{ ref('stg_memwh__sequences') }} q
  on q.data_fingerprint = l.data_fingerprint and q.seq_idx = l.seq_idx
