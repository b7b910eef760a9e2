"""Read the membership and forecast marts (STUDIES §1-3) for the report, bounded in size.

At most MAX_ROC_PANELS units in the ROC chart and MAX_CURVE_POINTS points per curve (the ends
and the paper's binary-predictor point always kept), so the embedded data stays far below
Altair's 5,000-row limit at any warehouse size. None when the marts are absent.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl

from memwh.reports.sql import query, table_names

MAX_ROC_PANELS = 4  # units (final revisions, evenly spread by size, largest in)
MAX_CURVE_POINTS = 40  # points per curve drawn
MAX_AUC_ROWS = 48
MAX_FORECAST_PREDICTORS = 8
SIGNAL_ORDER = [
    "loss",
    "min_k_logprob",
    "zlib_ratio",
    "tf_token_accuracy",
    "prefix_match_len",
    "memorization_score",
    "ref_loss",
]
MARTS = ("membership_inference", "memorization_forecast", "signal_curves")


@dataclass
class MembershipData:
    """What the membership / forecast figures draw (None when the marts are absent)."""

    roc: pl.DataFrame  # membership ROC points (held-out non-members) of the shown units
    auc: pl.DataFrame  # membership_inference rows of the final revisions
    forecast: pl.DataFrame  # forecast PR points of every predictor of the headline target
    target: str | None  # "model@revision" of the headline target


def _thin_points(where: str) -> str:
    """signal_curves rows of the curves selected by `where`, at most ~MAX_CURVE_POINTS each."""
    return f"""
        WITH c AS (
            SELECT *, count(*) OVER (PARTITION BY study, model, revision, target_model,
                                     target_revision, nonmember_kind, signal) AS n
            FROM signal_curves WHERE {where}
        )
        SELECT * FROM c
        WHERE n <= {MAX_CURVE_POINTS} OR is_binary_predictor OR point_index = n - 1
           OR point_index % ceil(n / {MAX_CURVE_POINTS})::BIGINT = 0"""


def load_membership(
    con: duckdb.DuckDBPyConnection, model_order: list[str]
) -> MembershipData | None:
    """AUC rows of the final revisions, ROC points of the units shown, and the forecast
    curves of the headline target's predictors."""
    if not set(MARTS) <= table_names(con):
        return None
    auc = query(
        con,
        f"""SELECT m.* FROM membership_inference m
            JOIN memorization_rates r USING (model, revision)
            WHERE r.is_final_revision
            ORDER BY r.n_params NULLS LAST, m.model, m.nonmember_kind, m.signal
            LIMIT {MAX_AUC_ROWS * len(SIGNAL_ORDER)}""",
    )
    shown = [m for m in model_order if m in set(auc["model"].to_list())]
    if len(shown) > MAX_ROC_PANELS:
        idx = np.unique(np.round(np.linspace(0, len(shown) - 1, MAX_ROC_PANELS)).astype(int))
        shown = [shown[i] for i in idx]
    units = auc.filter(pl.col("model").is_in(shown)).select("model", "revision").unique()
    keys = [f"{m}\x1f{r}" for m, r in units.rows()]
    roc = query(
        con,
        _thin_points(
            "study = 'membership' AND nonmember_kind = 'held_out' "
            "AND model || chr(31) || revision IN (SELECT unnest($keys))"
        )
        + " ORDER BY model, signal, point_index",
        keys=keys,
    )
    target = con.sql(
        """SELECT target_model, target_revision FROM memorization_forecast WHERE is_final_target
           GROUP BY ALL ORDER BY count(*) DESC, target_model LIMIT 1"""
    ).fetchall()
    forecast = pl.DataFrame()
    if target:
        tm, tr = target[0]
        forecast = query(
            con,
            f"""WITH p AS (
                    SELECT * FROM (
                        SELECT DISTINCT predictor_model, predictor_revision, predictor_step,
                               predictor_kind, compute_fraction
                        FROM memorization_forecast
                        WHERE target_model = $tm AND target_revision = $tr
                    )
                    QUALIFY row_number() OVER (PARTITION BY predictor_kind
                        ORDER BY compute_fraction DESC NULLS LAST, predictor_model,
                                 predictor_revision) <= {MAX_FORECAST_PREDICTORS // 2}
                ),
                pts AS ({_thin_points("study = 'forecast' AND target_model = $tm AND target_revision = $tr")})
                SELECT pts.model, pts.revision, pts.signal, pts.point_index, pts.recall,
                       pts.precision, pts.threshold, pts.is_binary_predictor, p.predictor_step,
                       p.predictor_kind, p.compute_fraction
                FROM pts JOIN p ON p.predictor_model = pts.model
                               AND p.predictor_revision = pts.revision
                WHERE pts.precision IS NOT NULL
                ORDER BY pts.model, pts.revision, pts.signal, pts.point_index""",
            tm=tm,
            tr=tr,
        )
    return MembershipData(
        roc=roc, auc=auc, forecast=forecast, target=f"{tm}@{tr}" if target else None
    )
