"""Figures of prediction: smaller models and earlier checkpoints predicting what the largest
model memorizes (precision/recall, recall against compute, the predictor grid)."""

from __future__ import annotations

import altair as alt
import polars as pl

from memwh.reports.data import Marts
from memwh.reports.style import (
    HEIGHT,
    PANEL_WIDTH,
    PR_LONG,
    WIDTH,
    Absent,
    Drawn,
    Style,
    fmt_pct,
    inline,
    params_x,
    pr_long,
    pr_tooltip,
    table,
)


def _pr_facet(
    df: pl.DataFrame, x: alt.X, color: alt.Color, tooltip: list, dash: str | None = None
) -> alt.TopLevelMixin:
    long = pr_long(df)
    base = alt.Chart(
        inline(
            long,
            "predictor_model",
            "predictor_revision",
            "predictor_params",
            "target_model",
            "target_revision",
            *PR_LONG,
        )
    ).encode(x=x)
    y = alt.Y("value:Q", title="value (fraction)", scale=alt.Scale(domain=[0, 1]))
    line_enc = {"y": y, "detail": "target_model:N"}
    if dash:
        line_enc["strokeDash"] = alt.StrokeDash(f"{dash}:N", title=dash.replace("_", " "))
    layers = alt.layer(
        base.mark_line(color="#9e9e9e", strokeWidth=1.2).encode(**line_enc),
        base.mark_rule(strokeWidth=2).encode(y="lo:Q", y2="hi:Q", color=color),
        base.mark_point(filled=True, size=70, opacity=1).encode(y=y, color=color, tooltip=tooltip),
    ).properties(width=PANEL_WIDTH, height=HEIGHT - 40)
    row = (
        alt.Row("target_model:N", title="target")
        if df["target_model"].n_unique() > 1
        else alt.Undefined
    )
    return layers.facet(
        column=alt.Column(
            "metric:N",
            title=None,
            sort=["precision", "recall"],
            header=alt.Header(labelFontWeight="bold"),
        ),
        row=row,
    )


def _pr_quote(r: dict, who: str) -> str:
    prec = "n/a" if r["precision"] is None else f"{r['precision']:.3f}"
    rec = "n/a" if r["recall"] is None else f"{r['recall']:.3f}"
    return f"{who}: precision {prec}, recall {rec} (TP {r['tp']:,}, FP {r['fp']:,}, FN {r['fn']:,})"


def precision_recall_vs_params(m: Marts, st: Style) -> Drawn | Absent:
    df = m.pr_smaller.filter(pl.col("predictor_params").is_not_null())
    if df.is_empty():
        return Absent(
            f"Needs at least two model sizes scored on the same sequences; this warehouse "
            f"has {m.n_models} model{'s' if m.n_models != 1 else ''} ({', '.join(m.model_order)})."
        )
    tooltip = pr_tooltip(
        [
            alt.Tooltip("predictor_model:N", title="predictor"),
            alt.Tooltip("predictor_revision:N", title="predictor revision"),
            alt.Tooltip("predictor_params:Q", title="predictor parameters", format=",.0f"),
            alt.Tooltip("target_model:N", title="target"),
            alt.Tooltip("target_revision:N", title="target revision"),
        ]
    )
    chart = _pr_facet(
        df,
        params_x("predictor_params", "predictor parameters"),
        st.color("predictor_model", "predictor model"),
        tooltip,
    )
    targets = ", ".join(
        f"{r['target_model']} @ {r['target_revision']}"
        for r in df.unique(["target_model", "target_revision"], maintain_order=True).iter_rows(
            named=True
        )
    )
    first = df.filter(pl.col("is_final_target")) if df["is_final_target"].any() else df
    first = first.sort("predictor_params")
    lo, hi = first.row(0, named=True), first.row(-1, named=True)
    quoted = _pr_quote(lo, lo["predictor_model"]) + (
        f"; {_pr_quote(hi, hi['predictor_model'])}" if hi is not lo and first.height > 1 else ""
    )
    caption = (
        f"Each smaller model (same checkpoint) predicts that the target ({targets}) memorizes "
        f"exactly the sequences it memorizes itself ({m.label}; {m.dataset}). Precision = "
        "share of the predictor's memorized sequences the target also memorizes; recall = "
        f"share of the target's memorized sequences the predictor finds. {quoted}. Whiskers: "
        "Wilson 95% intervals. For reference, Biderman et al. report precision 0.88–0.96 and "
        "recall 0.20–0.80 for Pythia-70M…6.9B predicting 12B."
    )
    return Drawn(chart, caption)


def checkpoint_precision_recall(m: Marts, st: Style) -> Drawn | Absent:
    df = m.pr_checkpoints.filter(pl.col("training_fraction").is_not_null())
    if df.is_empty():
        return Absent(
            "Needs at least two checkpoints (training steps) of a model scored on the "
            "same sequences; no model in this warehouse has them."
        )
    tooltip = pr_tooltip(
        [
            alt.Tooltip("target_model:N", title="model"),
            alt.Tooltip("predictor_revision:N", title="checkpoint"),
            alt.Tooltip("training_fraction:Q", title="fraction of training", format=".1%"),
            alt.Tooltip("target_revision:N", title="final checkpoint"),
        ]
    )
    x = alt.X(
        "training_fraction:Q",
        title="checkpoint's fraction of training (steps / final step)",
        scale=alt.Scale(domain=[0, 1]),
        axis=alt.Axis(format="%"),
    )
    long = pr_long(df)
    base = alt.Chart(
        inline(
            long,
            "target_model",
            "target_revision",
            "predictor_revision",
            "training_fraction",
            *PR_LONG,
        )
    ).encode(x=x)
    y = alt.Y("value:Q", title="value (fraction)", scale=alt.Scale(domain=[0, 1]))
    color = st.color("target_model", "model")
    # One row of panels per model (whiskers of different models never overlap).
    models = [x for x in m.model_order if x in set(df["target_model"].to_list())]
    chart = (
        alt.layer(
            base.mark_line(strokeWidth=1.5).encode(y=y, color=color),
            base.mark_rule(strokeWidth=2).encode(y="lo:Q", y2="hi:Q", color=color),
            base.mark_point(filled=True, size=55).encode(y=y, color=color, tooltip=tooltip),
        )
        .properties(width=PANEL_WIDTH, height=150 if len(models) > 1 else HEIGHT - 40)
        .facet(
            column=alt.Column(
                "metric:N",
                title=None,
                sort=["precision", "recall"],
                header=alt.Header(labelFontWeight="bold"),
            ),
            row=alt.Row("target_model:N", title=None, sort=models)
            if len(models) > 1
            else alt.Undefined,
        )
    )

    # The paper's Table 2: the headline target (largest model), else every target.
    tab = df.filter(pl.col("is_final_target")) if df["is_final_target"].any() else df
    tab = tab.sort(["target_params", "target_model", "predictor_step"], nulls_last=True)
    note = None
    if tab.height > 60:
        note = f"Table shows 60 of {tab.height} checkpoints, evenly spread."
        idx = sorted({round(i * (tab.height - 1) / 59) for i in range(60)})
        tab = tab[idx]
    rows = [
        (
            r["target_model"],
            r["predictor_revision"],
            "–" if r["predictor_step"] is None else f"{r['predictor_step']:,}",
            fmt_pct(r["training_fraction"], 1),
            f"{r['precision']:.3f} [{r['precision_lo']:.3f}, {r['precision_hi']:.3f}]"
            if r["precision"] is not None
            else "–",
            f"{r['recall']:.3f} [{r['recall_lo']:.3f}, {r['recall_hi']:.3f}]"
            if r["recall"] is not None
            else "–",
            f"{r['tp']:,}",
            f"{r['fp']:,}",
            f"{r['fn']:,}",
            f"{r['n_population']:,}",
        )
        for r in tab.iter_rows(named=True)
    ]
    table_html = table(
        [
            "model",
            "checkpoint",
            "step",
            "of training",
            "precision [95% CI]",
            "recall [95% CI]",
            "TP",
            "FP",
            "FN",
            "sequences",
        ],
        rows,
        numeric={2, 3, 4, 5, 6, 7, 8, 9},
    )
    head = tab.filter(pl.col("target_model") == tab["target_model"][-1]).sort("predictor_step")
    a, b = head.row(0, named=True), head.row(-1, named=True)
    quoted = _pr_quote(
        a, f"{a['predictor_revision']} ({fmt_pct(a['training_fraction'], 0)} of training)"
    )
    if head.height > 1:
        quoted += "; " + _pr_quote(
            b, f"{b['predictor_revision']} ({fmt_pct(b['training_fraction'], 0)})"
        )
    restricted = m.settings.get("restrict_checkpoint_population")
    population = (
        "sequences both had seen"
        if restricted == "True"
        else "sequences both scored"
        if restricted == "False"
        else "sequences both scored (restricted to those both had seen when the build says so)"
    )
    caption = (
        "Each earlier checkpoint predicts that the model's final checkpoint "
        f"({a['target_revision']}) memorizes the sequences it has memorized so far ({m.label}; "
        f"population: {population}). {a['target_model']}: {quoted}. Whiskers: Wilson 95% "
        "intervals. For reference, Biderman et al. report precision 0.92–0.94 with recall "
        "rising from 0.50 to 0.92 for Pythia-12B's checkpoints."
    )
    return Drawn(chart, caption, note=note, table_html=table_html)


def recall_vs_compute(m: Marts, st: Style) -> Drawn | Absent:
    df = pl.concat([m.pr_smaller, m.pr_checkpoints.filter(pl.col("is_final_target"))])
    df = df.filter(pl.col("compute_fraction").is_not_null() & (pl.col("compute_fraction") > 0))
    if df.is_empty():
        return Absent(
            "Needs predictors of the final target (smaller models or earlier checkpoints) "
            "with known training compute (train_flops)."
        )
    df = df.with_columns(
        pl.col("predictor_kind").replace(
            {"smaller_model": "smaller model", "earlier_checkpoint": "earlier checkpoint"}
        )
    )
    base = alt.Chart(
        inline(
            df,
            "predictor_model",
            "predictor_revision",
            "predictor_kind",
            "compute_fraction",
            "recall",
            "recall_lo",
            "recall_hi",
            "precision",
            "target_model",
        )
    ).encode(
        x=alt.X(
            "compute_fraction:Q",
            title="predictor compute / target compute (6·N·D, log scale)",
            scale=alt.Scale(type="log", nice=False, padding=12),
            axis=alt.Axis(format="~%"),
        ),
    )
    y = alt.Y(
        "recall:Q",
        title="recall (fraction of the target's memorized sequences)",
        scale=alt.Scale(domain=[0, 1]),
    )
    color = st.color("predictor_model", "predictor model")
    shape = alt.Shape(
        "predictor_kind:N",
        title="predictor",
        scale=alt.Scale(
            domain=["smaller model", "earlier checkpoint"], range=["circle", "triangle-up"]
        ),
    )
    chart = (
        alt.layer(
            base.mark_line(color="#9e9e9e", strokeWidth=1.2).encode(
                y=y,
                strokeDash=alt.StrokeDash(
                    "predictor_kind:N",
                    title="predictor",
                    scale=alt.Scale(domain=["smaller model", "earlier checkpoint"]),
                ),
            ),
            base.mark_rule(strokeWidth=2).encode(y="recall_lo:Q", y2="recall_hi:Q", color=color),
            base.mark_point(filled=True, size=70, opacity=1).encode(
                y=y,
                color=color,
                shape=shape,
                tooltip=[
                    alt.Tooltip("predictor_model:N", title="predictor"),
                    alt.Tooltip("predictor_revision:N", title="predictor revision"),
                    alt.Tooltip("predictor_kind:N", title="kind"),
                    alt.Tooltip("compute_fraction:Q", title="compute fraction", format=".2%"),
                    alt.Tooltip("recall:Q", format=".3f"),
                    alt.Tooltip("recall_lo:Q", title="95% CI low", format=".3f"),
                    alt.Tooltip("recall_hi:Q", title="95% CI high", format=".3f"),
                    alt.Tooltip("precision:Q", format=".3f"),
                    alt.Tooltip("target_model:N", title="target"),
                ],
            ),
        )
        .resolve_scale(color="shared")
        .properties(width=WIDTH, height=HEIGHT)
    )
    best = {
        kind: part.sort("recall", descending=True, nulls_last=True).row(0, named=True)
        for kind, part in ((k[0], p) for k, p in df.group_by(["predictor_kind"]))
    }
    quoted = "; ".join(
        f"best {kind}: {r['predictor_model']} @ {r['predictor_revision']} recalls "
        f"{r['recall']:.3f} at {fmt_pct(r['compute_fraction'], 1)} of the target's compute"
        for kind, r in sorted(best.items())
        if r["recall"] is not None
    )
    caption = (
        "Recall of each predictor of the final target against the compute it used (C = 6·N·D: "
        "parameters × tokens seen) as a fraction of the target's. Circles: smaller fully "
        f"trained models; triangles: earlier checkpoints of the target. {quoted}. Whiskers: "
        "Wilson 95% intervals."
    )
    return Drawn(chart, caption)


# ---------------------------------------------------------------- predictor grid


def prediction_grid(m: Marts, st: Style) -> Drawn | Absent:
    """Precision and recall of every (model size x checkpoint) predicting the final largest
    model: two heatmaps, predictor size on y, checkpoint on x."""
    g = m.grid
    if g is None or g.is_empty() or g["step_a"].null_count() == g.height:
        return Absent(
            "Needs checkpoints (revisions with a training step) of the models and a final "
            "target scored on the same sequences."
        )
    g = g.filter(pl.col("step_a").is_not_null())
    target = f"{g['model_b'][0]} @ {g['revision_b'][0]}"
    long = pl.concat(
        [
            g.select(
                "model_a", "revision_a", "step_a", "n_a", "n_b", "n_both", "n_common",
                pl.lit(metric).alias("metric"), pl.col(metric).alias("value"),
            )
            for metric in ("precision", "recall")
        ]
    )  # fmt: skip
    models = [x for x in m.model_order if x in set(g["model_a"].to_list())]
    base = alt.Chart(
        inline(
            long,
            "model_a",
            "revision_a",
            "step_a",
            "n_a",
            "n_b",
            "n_both",
            "n_common",
            "metric",
            "value",
        )
    ).encode(
        x=alt.X("step_a:O", title="predictor checkpoint (training step)"),
        y=alt.Y("model_a:N", title="predictor model (by size)", sort=list(reversed(models))),
    )
    heat = base.mark_rect().encode(
        color=alt.Color("value:Q", title="value", scale=alt.Scale(scheme="viridis", domain=[0, 1])),
        tooltip=[
            alt.Tooltip("model_a:N", title="predictor"),
            alt.Tooltip("revision_a:N", title="checkpoint"),
            alt.Tooltip("metric:N"),
            alt.Tooltip("value:Q", format=".3f"),
            alt.Tooltip("n_both:Q", title="memorized by both", format=","),
            alt.Tooltip("n_a:Q", title="memorized by predictor", format=","),
            alt.Tooltip("n_b:Q", title="memorized by target", format=","),
            alt.Tooltip("n_common:Q", title="sequences both scored", format=","),
        ],
    )
    text = base.mark_text(fontSize=9).encode(
        text=alt.Text("value:Q", format=".2f"),
        color=alt.condition("datum.value > 0.55", alt.value("#111"), alt.value("white")),
    )
    n_x = g["step_a"].n_unique()
    layer = (heat + text) if n_x * len(models) <= 120 else heat
    chart = layer.properties(
        width=max(160, min(PANEL_WIDTH, 28 * n_x)), height=max(80, 26 * len(models))
    ).facet(
        column=alt.Column(
            "metric:N",
            title=None,
            sort=["precision", "recall"],
            header=alt.Header(labelFontWeight="bold"),
        )
    )
    best = g.sort("recall", descending=True, nulls_last=True).row(0, named=True)
    caption = (
        f"Every predictor unit (model size × checkpoint) predicting that the final largest model "
        f"({target}) memorizes what the predictor memorizes ({m.label}), over the sequences both "
        f"scored. Highest recall: {best['model_a']} @ {best['revision_a']} "
        f"({best['recall']:.3f}, precision {best['precision']:.3f})."
        if best["recall"] is not None
        else f"Every predictor unit predicting {target}."
    )
    return Drawn(chart, caption)
