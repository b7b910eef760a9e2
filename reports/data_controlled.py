"""Read the controlled-experiment marts (STUDIES §5, §7) for the report, bounded in size:
few perturbed units, few categories, at most MAX_MITIGATIONS mitigation rows."""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import polars as pl

from memwh.reports.sql import query, table_names

MAX_DOSE_UNITS = 3  # perturbed units (final revisions first) drawn beside their control
MAX_DOSE_CATEGORIES = 4  # categories (most sequences first)
MAX_MITIGATIONS = 200


@dataclass
class ControlledData:
    """What the controlled-experiment figures draw (empty frames when the marts are absent)."""

    dose: pl.DataFrame = field(default_factory=pl.DataFrame)  # insertion_dose_response
    mitigation: pl.DataFrame = field(default_factory=pl.DataFrame)  # mitigation_effect


def load_controlled(con: duckdb.DuckDBPyConnection) -> ControlledData:
    """Bounded slices of the controlled marts."""
    have = table_names(con)
    out = ControlledData()
    if "insertion_dose_response" in have:
        out.dose = query(
            con,
            f"""WITH units AS (
                    SELECT model, revision FROM insertion_dose_response
                    WHERE control_model IS NOT NULL GROUP BY model, revision
                    ORDER BY max(step) DESC NULLS LAST, model LIMIT {MAX_DOSE_UNITS}),
                cats AS (
                    SELECT category FROM insertion_dose_response
                    WHERE (model, revision) IN (SELECT (model, revision) FROM units)
                    GROUP BY category ORDER BY sum(n_scored) DESC LIMIT {MAX_DOSE_CATEGORIES})
                SELECT model || '@' || revision AS unit, control_model, category,
                       duplicates_bin, n_scored, n_memorized, memorization_rate,
                       memorization_rate_lo, memorization_rate_hi, control_memorized,
                       control_rate, control_rate_lo, control_rate_hi, rate_diff,
                       rate_diff_lo, rate_diff_hi, loss_diff, loss_diff_lo, loss_diff_hi
                FROM insertion_dose_response
                WHERE (model, revision) IN (SELECT (model, revision) FROM units)
                  AND category IN (SELECT category FROM cats)
                ORDER BY unit, category, duplicates_bin""",
        )
    if "mitigation_effect" in have:
        out.mitigation = query(
            con,
            f"""SELECT base_model || '@' || base_revision AS base, edited_model || '@' ||
                       edited_revision AS edited, coalesce(method, 'unnamed') AS method,
                       method_params, base_memorized, n_removed, removed_share,
                       removed_share_lo, removed_share_hi, n_newly_memorized,
                       perplexity_ratio_neither, perplexity_ratio_neither_lo,
                       perplexity_ratio_neither_hi, perplexity_ratio_held_out
                FROM mitigation_effect WHERE base_memorized > 0
                ORDER BY base, edited LIMIT {MAX_MITIGATIONS}""",
        )
    return out
