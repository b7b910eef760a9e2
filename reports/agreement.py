"""Figures of agreement between units: Jaccard overlap of memorized sets and the Pearson
correlation of matched-prefix lengths across sizes and checkpoints."""

from __future__ import annotations

import altair as alt
import polars as pl

from memwh.reports.data import Marts
from memwh.reports.style import Absent, Drawn, Style, inline


def agreement_heatmap(m: Marts, st: Style) -> Drawn | Absent:
    df = m.agreement.filter(pl.col("jaccard").is_not_null())
    if len(m.heatmap_units) < 2 or df.is_empty():
        return Absent(
            "Needs at least two units (models or checkpoints) scored on the same "
            "sequences; this warehouse has one."
        )
    order = m.heatmap_units
    base = alt.Chart(
        inline(df, "unit_a", "unit_b", "jaccard", "cohen_kappa", "n_both", "n_a", "n_b", "n_common")
    ).encode(
        x=alt.X("unit_a:N", title=None, sort=order, axis=alt.Axis(labelAngle=-40, labelLimit=180)),
        y=alt.Y("unit_b:N", title=None, sort=order, axis=alt.Axis(labelLimit=180)),
    )
    side = max(220, min(560, 36 * len(order)))
    heat = base.mark_rect().encode(
        color=alt.Color(
            "jaccard:Q", title="Jaccard index", scale=alt.Scale(scheme="blues", domainMin=0)
        ),
        tooltip=[
            alt.Tooltip("unit_a:N", title="A"),
            alt.Tooltip("unit_b:N", title="B"),
            alt.Tooltip("jaccard:Q", format=".3f"),
            alt.Tooltip("cohen_kappa:Q", title="Cohen's κ", format=".3f"),
            alt.Tooltip("n_both:Q", title="memorized by both", format=","),
            alt.Tooltip("n_a:Q", title="memorized by A", format=","),
            alt.Tooltip("n_b:Q", title="memorized by B", format=","),
            alt.Tooltip("n_common:Q", title="sequences scored by both", format=","),
        ],
    )
    chart = heat
    if len(order) <= 12:
        mid = (df["jaccard"].max() or 0) / 2
        chart = heat + base.mark_text(fontSize=10).encode(
            text=alt.Text("jaccard:Q", format=".2f"),
            color=alt.condition(f"datum.jaccard > {mid}", alt.value("white"), alt.value("#222")),
        )
    chart = chart.properties(width=side, height=side)
    what = "models' final checkpoints" if "@" not in order[0] else "units (model@revision)"
    hi = df.sort("jaccard", descending=True).row(0, named=True)
    lo = df.sort("jaccard").row(0, named=True)
    caption = (
        f"Jaccard overlap |A∩B| / |A∪B| of the sets of memorized sequences ({m.label}) of pairs "
        f"of {what}, over the sequences both scored; the diagonal is left blank. Highest: "
        f"{hi['unit_a']} and {hi['unit_b']} ({hi['jaccard']:.2f}); lowest: {lo['unit_a']} and "
        f"{lo['unit_b']} ({lo['jaccard']:.2f})."
    )
    return Drawn(chart, caption)


def _corr_heat(df: pl.DataFrame, a: str, b: str, order: list[str], side: int) -> alt.Chart:
    base = alt.Chart(inline(df, a, b, "pearson_prefix_match_len", "n_pearson")).encode(
        x=alt.X(f"{a}:N", title=None, sort=order, axis=alt.Axis(labelAngle=-40, labelLimit=160)),
        y=alt.Y(f"{b}:N", title=None, sort=order, axis=alt.Axis(labelLimit=160)),
    )
    heat = base.mark_rect().encode(
        color=alt.Color(
            "pearson_prefix_match_len:Q",
            title="Pearson r",
            scale=alt.Scale(scheme="viridis", domain=[0, 1], clamp=True),
        ),
        tooltip=[
            alt.Tooltip(f"{a}:N", title="A"),
            alt.Tooltip(f"{b}:N", title="B"),
            alt.Tooltip("pearson_prefix_match_len:Q", title="Pearson r", format=".3f"),
            alt.Tooltip("n_pearson:Q", title="sequences", format=","),
        ],
    )
    layer = heat
    if len(order) <= 12:
        layer = heat + base.mark_text(fontSize=9).encode(
            text=alt.Text("pearson_prefix_match_len:Q", format=".2f"),
            color=alt.condition(
                "datum.pearson_prefix_match_len > 0.55", alt.value("#111"), alt.value("white")
            ),
        )
    return layer.properties(width=side, height=side)


def prefix_match_correlation(m: Marts, st: Style) -> Drawn | Absent:
    """Pearson correlation of prefix_match_len across sizes (final checkpoints) and across
    the checkpoints of the largest model with several (the paper's correlation figures)."""
    panels, parts = [], []
    sizes = m.pearson_sizes
    if (
        sizes is not None
        and not sizes.filter(pl.col("pearson_prefix_match_len").is_not_null()).is_empty()
    ):
        sizes = sizes.filter(pl.col("pearson_prefix_match_len").is_not_null())
        order = [x for x in m.model_order if x in set(sizes["model_a"].to_list())]
        side = max(160, min(360, 30 * len(order)))
        panels.append(
            _corr_heat(sizes, "model_a", "model_b", order, side).properties(
                title="across sizes (final checkpoints)"
            )
        )
        near = sizes.filter(pl.col("model_a") == order[-1])
        near = near.with_columns(
            pl.col("model_b")
            .replace_strict({x: i for i, x in enumerate(order)}, default=None)
            .alias("rank")
        ).sort("rank")
        parts.append(
            f"across sizes, {order[-1]} correlates {near['pearson_prefix_match_len'][-1]:.2f} with "
            f"{near['model_b'][-1]} and {near['pearson_prefix_match_len'][0]:.2f} with {near['model_b'][0]}"
            if near.height
            else ""
        )
    ckpt = m.pearson_checkpoints
    if (
        ckpt is not None
        and not ckpt.filter(pl.col("pearson_prefix_match_len").is_not_null()).is_empty()
    ):
        ckpt = ckpt.filter(pl.col("pearson_prefix_match_len").is_not_null())
        steps = (
            m.rates.filter(pl.col("model") == ckpt["model_a"][0])
            .select("revision", "step")
            .sort("step")
        )
        order = [r for r in steps["revision"].to_list() if r in set(ckpt["revision_a"].to_list())]
        side = max(160, min(360, 30 * len(order)))
        panels.append(
            _corr_heat(ckpt, "revision_a", "revision_b", order, side).properties(
                title=f"across checkpoints ({ckpt['model_a'][0]})"
            )
        )
        last = ckpt.filter(pl.col("revision_a") == order[-1])
        first = last.filter(pl.col("revision_b") == order[0])
        prev = last.filter(pl.col("revision_b") == order[-2]) if len(order) >= 2 else last.clear()
        if first.height and prev.height:
            parts.append(
                f"across checkpoints of {ckpt['model_a'][0]}, {order[-1]} correlates "
                f"{prev['pearson_prefix_match_len'][0]:.2f} with {order[-2]} and "
                f"{first['pearson_prefix_match_len'][0]:.2f} with {order[0]}"
            )
    if not panels:
        return Absent(
            "Needs at least two units scored on the same sequences with matched-prefix lengths "
            "(imports of scores only have none)."
        )
    chart = panels[0] if len(panels) == 1 else alt.hconcat(*panels, spacing=40)
    said = "; ".join(p for p in parts if p)
    caption = (
        "Pearson correlation of the matched-prefix length of the same sequences between two "
        "units (exact up to var pearson_max_sequences common sequences, else a deterministic "
        f"sample). How far one unit's per-sequence memorization carries to another: {said}."
        if said
        else "Pearson correlation of the matched-prefix length of the same sequences between two units."
    )
    return Drawn(chart, caption)
