-- Every stored score row with its unit's exposure (STUDIES §1): first_step from the model's
-- exposure table or Pythia's rule (first_step = seq_idx div sequences_per_step), and membership:
--   member        first_step < step (any first_step when the unit has no step: final/fine-tuned)
--   not_yet_seen  first_step >= step (trained later)
--   held_out      first_step NULL (never trained on)
--   unknown       no declaration for (model, dataset), or a table without a row for seq_idx
-- Sparse (memorized-index) units store only their memorized rows, so only those appear here.
with units as (
    select * from {{ ref('int_unit_exposure') }}
),
exposed as (
    select
        s.model,
        s.revision,
        u.step,
        s.seq_idx,
        u.dataset,
        u.exposure_kind,
        e.seq_idx is not null as has_exposure_row,
        case
            when u.exposure_kind = 'rule'
                 and (u.rule_train_steps is null or s.seq_idx // u.rule_sequences_per_step < u.rule_train_steps)
                then s.seq_idx // u.rule_sequences_per_step
            when u.exposure_kind = 'table' then e.first_step
        end as first_step,
        e.n_exposures,
        e.last_step,
        s.is_memorized,
        s.prefix_match_len,
        s.memorization_score,
        s.loss,
        s.min_k_logprob,
        s.zlib_ratio,
        s.tf_token_accuracy
    from {{ ref('int_scores_labeled') }} as s
    join units as u on u.model = s.model and u.revision = s.revision and u.dataset = s.dataset
    left join {{ ref('stg_memwh__exposure') }} as e
      on u.exposure_kind = 'table' and e.model = s.model and e.dataset = u.dataset and e.seq_idx = s.seq_idx
)
select
    * exclude (has_exposure_row),
    case
        when exposure_kind is null or (exposure_kind = 'table' and not has_exposure_row) then 'unknown'
        when first_step is null then 'held_out'
        when step is null or first_step < step then 'member'
        else 'not_yet_seen'
    end as membership
from exposed
