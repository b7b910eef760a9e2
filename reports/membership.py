"""Report figures of the membership and forecast marts (STUDIES §1-3).

Read from `membership_inference`, `memorization_forecast` and `signal_curves` only, bounded:
at most MAX_ROC_PANELS units in the ROC chart and MAX_CURVE_POINTS points per curve (the ends
and the paper's binary-predictor point always kept), so the embedded data stays far below
Altair's 5,000-row limit at any warehouse size.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import altair as alt
import duckdb
import numpy as np
import polars as pl

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
    con: duckdb.DuckDBPyConnection, model_order: list[str], q
) -> MembershipData | None:
    have = {r[0] for r in con.sql("SELECT table_name FROM information_schema.tables").fetchall()}
    if not all(t in have for t in MARTS):
        return None
    auc = q(
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
    roc = q(
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
        forecast = q(
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


def _values(df: pl.DataFrame, *cols: str) -> alt.Data:
    return alt.Data(values=df.select(cols).to_dicts())


def membership_roc(md: MembershipData | None, section_cls, width: int, height: int):
    title = "Membership inference: ROC per signal"
    key = "09_membership_roc"
    if md is None or md.roc.is_empty():
        return section_cls(
            key,
            title,
            "ROC curves of members against held-out non-members, per signal.",
            note="Needs exposure (what each checkpoint trained on, `memwh import exposure`) "
            "and units with both members and held-out sequences.",
        )
    df = md.roc.filter(pl.col("fpr") > 0).with_columns(
        pl.col("fpr", "tpr").round(5), unit=pl.concat_str("model", "revision", separator="@")
    )
    lo = float(df["fpr"].min())
    chance = pl.DataFrame(
        {"fpr": np.geomspace(lo, 1.0, 20), "tpr": np.geomspace(lo, 1.0, 20)}
    ).join(df.select("unit").unique(), how="cross")
    chance = chance.with_columns(signal=pl.lit("chance (TPR = FPR)"))
    data = pl.concat(
        [
            df.select("unit", "signal", "fpr", "tpr", "point_index"),
            chance.with_columns(point_index=pl.lit(0, pl.Int64)).select(
                "unit", "signal", "fpr", "tpr", "point_index"
            ),
        ],
        how="vertical_relaxed",
    )
    signals = [s for s in SIGNAL_ORDER if s in set(df["signal"].to_list())] + ["chance (TPR = FPR)"]
    chart = (
        alt.Chart(_values(data, "unit", "signal", "fpr", "tpr", "point_index"))
        .mark_line(strokeWidth=1.6)
        .encode(
            x=alt.X(
                "fpr:Q",
                title="false positive rate (held-out sequences called members), log scale",
                scale=alt.Scale(type="log", domain=[lo, 1], nice=False),
            ),
            y=alt.Y(
                "tpr:Q", title="true positive rate (members found)", scale=alt.Scale(domain=[0, 1])
            ),
            color=alt.Color("signal:N", sort=signals, scale=alt.Scale(domain=signals)),
            strokeDash=alt.condition(
                alt.datum.signal == "chance (TPR = FPR)", alt.value([4, 3]), alt.value([1, 0])
            ),
            order="point_index:Q",
            tooltip=[
                "unit:N",
                "signal:N",
                alt.Tooltip("fpr:Q", format=".4f"),
                alt.Tooltip("tpr:Q", format=".3f"),
            ],
        )
        .properties(width=width // 2, height=height * 3 // 4)
        .facet(facet=alt.Facet("unit:N", title=None), columns=2)
    )
    caption = (
        "Members (sequences the checkpoint trained on) against held-out sequences (never "
        "trained on), at the final checkpoint of each model shown: the share of members found "
        "(TPR) against the share of held-out sequences wrongly called members (FPR, log scale as "
        "in the membership-inference literature, where the low-FPR end matters). Signals are "
        "oriented so that higher means member (-loss, Min-K% Prob, -zlib ratio, ...); a curve "
        "on the dashed diagonal is chance. Exact ROC points from signal_curves."
    )
    return section_cls(key, title, caption, chart=chart)


def membership_auc_table(md: MembershipData | None, section_cls, table):
    title = "Membership inference: AUC per signal (final checkpoints)"
    key = "10_membership_auc"
    if md is None or md.auc.is_empty():
        return section_cls(
            key, title, "ROC AUC of each signal per unit.", note="No membership rows (see above)."
        )
    signals = [s for s in SIGNAL_ORDER if s in set(md.auc["signal"].to_list())]
    rows = []
    for (model, revision, kind), g in md.auc.group_by(
        ["model", "revision", "nonmember_kind"], maintain_order=True
    ):
        by = {r["signal"]: r for r in g.iter_rows(named=True)}
        first = next(iter(by.values()))
        cells = []
        for s in signals:
            r = by.get(s)
            if r is None:
                cells.append("–")
            elif r["roc_auc_lo"] is None:
                cells.append(f"{r['roc_auc']:.3f}")
            else:
                cells.append(f"{r['roc_auc']:.3f} [{r['roc_auc_lo']:.3f}, {r['roc_auc_hi']:.3f}]")
        rows.append(
            (model, revision, kind, f"{first['n_members']:,}", f"{first['n_nonmembers']:,}", *cells)
        )
    html_table = table(
        ["model", "revision", "non-members", "members", "non-members n", *signals],
        rows,
        numeric=set(range(3, 5 + len(signals))),
    )
    caption = (
        "ROC AUC (95% DeLong interval) of each signal separating members from each kind of "
        "non-member, at each model's final checkpoint: held_out = never trained on; "
        "not_yet_seen = trained only after this checkpoint. 0.5 is chance. "
        + html.escape("Member counts are of the loss signal; all rows: mart membership_inference.")
    )
    return section_cls(key, title, caption, table_html=html_table)


def forecast_pr(md: MembershipData | None, section_cls, color_for_models, width: int, height: int):
    title = "Forecasting memorization: precision-recall of each predictor's signal"
    key = "11_forecast_pr"
    if md is None or md.forecast.is_empty():
        return section_cls(
            key,
            title,
            "Precision-recall of smaller models' and earlier checkpoints' signals for the final target.",
            note="Needs a final target with smaller models or earlier checkpoints that both scored "
            "the same sequences (mart memorization_forecast).",
        )
    df = md.forecast.with_columns(
        predictor=pl.concat_str("model", "revision", separator="@"),
        binary=pl.when(pl.col("is_binary_predictor")).then(pl.lit("binary predictor (paper)")),
    )
    df = df.with_columns(pl.col("recall", "precision", "threshold").round(5))
    cols = ("predictor", "predictor_step", "signal", "recall", "precision", "point_index",
            "is_binary_predictor", "threshold")  # fmt: skip
    signals = [s for s in SIGNAL_ORDER if s in set(df["signal"].to_list())]
    pick = alt.param(
        name="forecast_signal",
        value="prefix_match_len" if "prefix_match_len" in signals else signals[0],
        bind=alt.binding_select(options=signals, name="signal "),
    )
    tooltip = [
        "predictor:N",
        "signal:N",
        alt.Tooltip("threshold:Q", title="signal >=", format=".4~g"),
        alt.Tooltip("recall:Q", format=".3f"),
        alt.Tooltip("precision:Q", format=".3f"),
    ]

    def panel(kind: str, color: alt.Color, what: str) -> alt.Chart | None:
        part = df.filter(pl.col("predictor_kind") == kind)
        if part.is_empty():
            return None
        base = (
            alt.Chart(_values(part, *cols))
            .transform_filter(alt.datum.signal == pick)
            .encode(
                x=alt.X(
                    "recall:Q",
                    title="recall (target's memorized sequences found)",
                    scale=alt.Scale(domain=[0, 1]),
                ),
                y=alt.Y("precision:Q", title="precision", scale=alt.Scale(domain=[0, 1])),
                color=color,
                detail="predictor:N",
            )
        )
        lines = base.mark_line(strokeWidth=1.5).encode(order="point_index:Q", tooltip=tooltip)
        marks = (
            base.transform_filter(alt.datum.is_binary_predictor)
            .mark_point(shape="diamond", size=110, filled=True, stroke="black", strokeWidth=1)
            .encode(tooltip=tooltip)
        )
        return (lines + marks).properties(width=width // 2, height=height, title=what)

    left = panel("smaller_model", color_for_models(), "smaller models, same revision")
    right = panel(
        "earlier_checkpoint",
        alt.Color(
            "predictor_step:Q",
            title="checkpoint step",
            scale=alt.Scale(scheme="inferno"),
        ),
        "earlier checkpoints of the target",
    )
    parts = [p for p in (left, right) if p is not None]
    chart = alt.hconcat(*parts).add_params(pick)  # the title is the section heading
    caption = (
        f"How well each predictor's per-sequence signal ranks the sequences that {md.target} "
        "memorized (mart memorization_forecast, over the same populations as "
        "prediction_precision_recall): precision against recall as the threshold on the signal "
        "falls. The diamonds are the paper's binary predictor (the predictor's own "
        "memorization: prefix_match_len >= the label threshold), one point of the "
        "prefix_match_len curve. Pick the signal above the chart."
    )
    return section_cls(key, title, caption, chart=chart)
