-- Every scored row with its memorization label (definition chosen by vars, see macros/labels.sql),
-- except rows of runs too short to be labelled (cont_len < memorized_min_tokens; counted by
-- `memwh build`).
select
    s.model,
    s.revision,
    s.dataset,
    s.seq_idx,
    s.prefix_match_len,
    s.memorization_score,
    s.loss,
    s.min_k_logprob,
    s.zlib_ratio,
    s.tf_token_accuracy,
    s.label_certain,
    s.label_verified,
    s.run_id,
    {{ is_memorized('s.prefix_match_len', 's.memorization_score', 'r.cont_len') }} as is_memorized
from {{ ref('stg_memwh__scores') }} as s
{% if var('label_definition', 'prefix_match') == 'score' %}
left join (select run_id, cont_len from {{ ref('stg_memwh__runs') }}) as r on r.run_id = s.run_id
{% endif %}
where s.run_id in (select run_id from {{ ref('stg_memwh__runs') }} where {{ can_label('cont_len') }})
