"""Report figures of the membership and forecast marts (STUDIES §1-3); the bounded data they
draw is read by data_membership.py."""

from __future__ import annotations

import html

import altair as alt
import numpy as np
import polars as pl

from memwh.reports.data import Marts
from memwh.reports.data_membership import SIGNAL_ORDER
from memwh.reports.style import HEIGHT, WIDTH, Absent, Drawn, Style, table
from memwh.reports.style import inline as _values


def membership_roc(m: Marts, st: Style) -> Drawn | Absent:
    md, width, height = m.membership, WIDTH, HEIGHT
    if md is None or md.roc.is_empty():
        return Absent(
            "Needs exposure (what each checkpoint trained on, `memwh import exposure`) "
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
    return Drawn(chart, caption)


def membership_auc_table(m: Marts, st: Style) -> Drawn | Absent:
    md = m.membership
    if md is None or md.auc.is_empty():
        return Absent("No membership rows (see above).")
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
    return Drawn(None, caption, table_html=html_table)


def forecast_pr(m: Marts, st: Style) -> Drawn | Absent:
    md, width, height = m.membership, WIDTH, HEIGHT
    if md is None or md.forecast.is_empty():
        return Absent(
            "Needs a final target with smaller models or earlier checkpoints that both scored "
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

    left = panel("smaller_model", st.color(), "smaller models, same revision")
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
    return Drawn(chart, caption)
