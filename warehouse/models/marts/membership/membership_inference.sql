-- Membership inference (STUDIES §1-3; mimir, Duan et al. 2024): per unit x signal x kind of
-- non-member, how well the signal tells the sequences the unit trained on (members) from
-- held-out ones (never trained) and, apart, from not-yet-seen ones (trained later). Exact ROC
-- AUC with ties and its DeLong 95% interval, TPR at FPR 0.1% / 1% / 10%, average precision.
-- Membership comes from the exposure declared for the unit's model and dataset (exposure_kind
-- says which: a per-sequence table or Pythia's seq_idx rule); units without one have no rows.
select
    m.model,
    m.revision,
    u.step,
    m.signal,
    m.nonmember_kind,
    m.n_members,
    m.n_nonmembers,
    m.roc_auc,
    m.roc_auc_lo,
    m.roc_auc_hi,
    m.tpr_at_fpr_0001,
    m.tpr_at_fpr_001,
    m.tpr_at_fpr_01,
    m.average_precision,
    u.dataset,
    u.exposure_kind,
    u.exposure_source
from {{ ref('int_membership_separation') }} as m
join {{ ref('int_unit_exposure') }} as u
  on u.model = m.model and u.revision = m.revision and u.dataset = m.dataset
