"""Read the memorisation-profile marts (docs/profiles.md) for the report, bounded in size.

Optional: a warehouse built before these marts existed (or a report fixture without them) gets
empty frames, and the charts say why they are absent instead of failing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import polars as pl

PROFILE_MARTS = (
    "memorization_profiles",
    "memorization_profile_summary",
    "memorization_transitions",
)
MAX_HEATMAP_CELLS = 3000  # cells of the cohort x checkpoint heatmap (all models together)
MAX_TRANSITION_ROWS = 2000


@dataclass
class ProfileData:
    """The slices the profile charts draw (outcome = the first of var profile_outcomes)."""

    outcome: str | None = None
    cells: pl.DataFrame = field(default_factory=pl.DataFrame)  # memorization_profiles
    summary: pl.DataFrame = field(default_factory=pl.DataFrame)  # memorization_profile_summary
    transitions: pl.DataFrame = field(default_factory=pl.DataFrame)
    missing: tuple[str, ...] = ()  # profile marts not in this warehouse
    heatmap_note: str | None = None  # what the heatmap cap left out


def load_profiles(con: duckdb.DuckDBPyConnection, models: list[str]) -> ProfileData:
    """Cells, summaries and transitions of `models` (the report's line models), largest first
    when the heatmap has to drop models to stay under MAX_HEATMAP_CELLS."""
    have = {
        r[0]
        for r in con.sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
    }
    missing = tuple(t for t in PROFILE_MARTS if t not in have)
    if missing:
        return ProfileData(missing=missing)
    params = {"models": models}
    outcomes = con.sql(
        "SELECT outcome FROM memorization_profiles GROUP BY outcome "
        "ORDER BY outcome <> 'loss', outcome LIMIT 1"
    ).fetchall()
    outcome = outcomes[0][0] if outcomes else None
    sizes = con.sql(
        "SELECT model, count(*) FROM memorization_profiles WHERE outcome = $o "
        "AND model IN (SELECT unnest($models)) GROUP BY model",
        params={"o": outcome, **params},
    ).fetchall()
    n_cells = dict(sizes)
    keep, total = [], 0
    for mdl in reversed(models):  # largest model first
        n = n_cells.get(mdl, 0)
        if n and total + n <= MAX_HEATMAP_CELLS:
            keep.append(mdl)
            total += n
    dropped = [m for m in models if n_cells.get(m) and m not in keep]
    note = (
        f"showing {len(keep)} of {len(keep) + len(dropped)} models (at most "
        f"{MAX_HEATMAP_CELLS:,} cells); dropped: {', '.join(dropped)}"
        if dropped
        else None
    )
    cells = con.sql(
        """SELECT model, cohort_index, cohort_first_step, cohort_last_step, checkpoint_step,
                  event_time, n_treated, n_control, att, att_se, att_lo, att_hi
           FROM memorization_profiles
           WHERE outcome = $o AND model IN (SELECT unnest($keep))
           ORDER BY model, cohort_index, checkpoint_step""",
        params={"o": outcome, "keep": keep},
    ).pl()
    summary = con.sql(
        """SELECT model, kind, event_time, term, n_cohorts, n_treated, n_control, estimate, se,
                  lo, hi
           FROM memorization_profile_summary
           WHERE outcome = $o AND model IN (SELECT unnest($models))
           ORDER BY model, event_time NULLS LAST""",
        params={"o": outcome, **params},
    ).pl()
    transitions = con.sql(
        f"""SELECT model, from_revision, from_step, to_revision, to_step, n_both_scored,
                   n_memorized_to, n_newly_memorized, n_kept, n_forgotten
            FROM memorization_transitions WHERE model IN (SELECT unnest($models))
            ORDER BY model, to_step LIMIT {MAX_TRANSITION_ROWS}""",
        params=params,
    ).pl()
    return ProfileData(outcome, cells, summary, transitions, (), note)
