-- Per unit: the exposure declaration that applies to it, i.e. the one of (its model, the dataset
-- it scored). Units that carry no dataset key (dataset 'unspecified'), or whose (model, dataset) has no
-- declaration get exposure_kind NULL and exposure_status saying why (their membership is unknown).
with units as (
    select model, revision, dataset, step, unit_fingerprint, data_fingerprint
    from {{ ref('int_units') }}
),
sets as (
    select * from {{ ref('stg_memwh__exposure_sets') }}
)
select
    u.model,
    u.revision,
    u.step,
    u.dataset,
    e.exposure_kind,
    e.rule_sequences_per_step,
    e.rule_train_steps,
    e.exposure_id,
    e.exposure_source,
    case
        when e.exposure_kind is not null then 'declared'
        when u.data_fingerprint is null then 'no dataset key'
        else 'no exposure for this model and dataset'
    end as exposure_status,
    -- what per-unit membership models key on: the unit's rows and labels, and its exposure
    md5(u.unit_fingerprint || '|' || coalesce(e.exposure_id, 'none')) as membership_fingerprint
from units as u
left join sets as e
  on e.model = u.model and e.dataset = u.data_fingerprint
