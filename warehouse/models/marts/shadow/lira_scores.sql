-- LiRA (Carlini et al. 2022, "Membership Inference Attacks From First Principles") per audited
-- unit x shadow population x sequence x signal: the unit's oriented signal against Gaussian
-- fits of the population's shadow units that trained on the sequence (in) and did not (out).
-- Computed in int_lira_scores; here with the audited unit's own membership of the sequence
-- (member / held_out / not_yet_seen / unknown: its exposure, when declared), for checking.
select
    l.model,
    l.revision,
    l.shadow_family,
    l.dataset,
    l.seq_idx,
    l.signal,
    l.score,
    coalesce(m.membership, 'unknown') as membership,
    l.n_in,
    l.n_out,
    l.mean_in,
    l.mean_out,
    l.lira_sd_in,
    l.lira_sd_out,
    l.lira_online,
    l.lira_offline,
    l.is_primary
from {{ ref('int_lira_scores') }} as l
left join {{ ref('int_scores_membership') }} as m
  on m.model = l.model and m.revision = l.revision and m.seq_idx = l.seq_idx
