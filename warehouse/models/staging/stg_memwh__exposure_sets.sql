-- Exposure declarations, one per (model, dataset): a per-sequence table or Pythia's rule.
select
    model,
    dataset,
    kind as exposure_kind,
    sequences_per_step as rule_sequences_per_step,
    train_steps as rule_train_steps,
    exposure_id,
    source as exposure_source,
    source_path as exposure_path,
    n_rows,
    n_trained,
    imported_at
from {{ source('raw', 'exposure_sets') }}
