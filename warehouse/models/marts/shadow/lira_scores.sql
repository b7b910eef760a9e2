-- LiRA (Carlini et al. 2022, "Membership Inference Attacks From First Principles") per audited
-- unit x shadow population x sequence x signal: the unit's oriented signal against Gaussian
-- fits of the population's shadow units that trained on the sequence (in) and did not (out).
-- Computed in int_lira_scores, with the audited unit's own membership of the sequence
-- (member / held_out / not_yet_seen / unknown: its exposure, when declared), for checking.
select
    model,
    revision,
    shadow_family,
    dataset,
    seq_idx,
    signal,
    score,
    membership,
    n_in,
    n_out,
    mean_in,
    mean_out,
    lira_sd_in,
    lira_sd_out,
    lira_online,
    lira_offline,
    is_primary
from {{ ref('int_lira_scores') }}
