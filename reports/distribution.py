"""Figures of per-sequence score distributions: the final checkpoints side by side, and each
model over training (the thick tail and the spike of memorized sequences)."""

from __future__ import annotations

import altair as alt
import polars as pl

from memwh.reports.data import Marts
from memwh.reports.style import (
    HEIGHT,
    PANEL_WIDTH,
    STEP_SCHEME,
    WIDTH,
    Absent,
    Drawn,
    Style,
    fmt_pct,
    inline,
)

_METRIC_AXIS = {
    "prefix_match_len": "matched prefix length (tokens of greedy continuation equal to the truth)",
    "memorization_score": "memorization score (fraction of continuation tokens matched)",
}


def _with_gaps(part: pl.DataFrame) -> pl.DataFrame:
    """Add null rows for bins a unit has no sequence in, so its line breaks there instead of
    drawing a level across the gap (the tail of a distribution is sparse)."""
    units = part.select("model", "revision", "step").unique()
    bins = part.select("bin_lower", "bin_upper").unique()
    grid = units.join(bins, how="cross")
    full = grid.join(
        part.drop("step"), on=["model", "revision", "bin_lower", "bin_upper"], how="left"
    )
    return full.sort(["model", "revision", "bin_lower"])


def score_distribution(m: Marts, st: Style) -> Drawn | Absent:
    df = m.distribution.filter(pl.col("fraction").is_not_null() & (pl.col("fraction") > 0))
    if df.is_empty():
        return Absent("No score distribution in the warehouse (score_distribution is empty).")
    by_model = df["model"].n_unique() > 1
    color = (
        st.color()
        if by_model
        else alt.Color(
            "step:O", title="checkpoint (training step)", scale=alt.Scale(scheme=STEP_SCHEME)
        )
        if df["step"].null_count() < df.height
        else alt.Color("revision:N", title="revision")
    )
    panels = []
    metrics = [x for x in _METRIC_AXIS if x in set(df["metric"].to_list())]
    for metric in metrics:
        part = _with_gaps(df.filter(pl.col("metric") == metric))
        base = alt.Chart(
            inline(
                part,
                "model",
                "revision",
                "step",
                "bin_lower",
                "bin_upper",
                "n_sequences",
                "fraction",
            )
        ).encode(
            x=alt.X(
                "bin_lower:Q", title=_METRIC_AXIS[metric], scale=alt.Scale(zero=True, nice=False)
            ),
            y=alt.Y(
                "fraction:Q",
                title="fraction of sequences (log scale)",
                scale=alt.Scale(type="log"),
                axis=alt.Axis(format="~e" if part["fraction"].min() < 1e-4 else "~%"),
            ),
            color=color,
            detail="revision:N",
        )
        panels.append(
            (
                base.mark_line(strokeWidth=1.3, interpolate="step-after", opacity=0.9)
                + base.mark_point(filled=True, size=18).encode(
                    tooltip=[
                        alt.Tooltip("model:N"),
                        alt.Tooltip("revision:N"),
                        alt.Tooltip("bin_lower:Q", title="bin from", format=",.3~f"),
                        alt.Tooltip("bin_upper:Q", title="bin to (excl.)", format=",.3~f"),
                        alt.Tooltip("n_sequences:Q", title="sequences", format=","),
                        alt.Tooltip("fraction:Q", format=".3~e"),
                    ]
                )
            ).properties(width=WIDTH if len(metrics) == 1 else 420, height=HEIGHT - 20)
        )
    chart = panels[0] if len(panels) == 1 else alt.hconcat(*panels)
    shown = (
        "the final checkpoint of each model" if by_model else "the checkpoints of " + df["model"][0]
    )
    pml = df.filter(pl.col("metric") == "prefix_match_len")
    spike = ""
    if not pml.is_empty():
        last = pml.filter(pl.col("model") == pml["model"][-1])
        last = last.filter(pl.col("revision") == last["revision"][-1])
        top = last.sort("bin_lower").row(-1, named=True)
        below = last.filter(pl.col("bin_lower") < top["bin_lower"]).sort("bin_lower")
        prev = below.row(-1, named=True)["fraction"] if below.height else None
        spike = (
            f" {top['model']} @ {top['revision']}: {fmt_pct(top['fraction'])} of sequences in "
            f"the top bin (matched prefix ≥ {top['bin_lower']:g} tokens)"
            + (f" against {fmt_pct(prev)} in the bin below" if prev is not None else "")
            + "."
        )
    caption = (
        f"Share of the scored sequences of {m.dataset} in each score bin for {shown}, on a log "
        f"axis; empty bins are not drawn.{spike}"
    )
    return Drawn(chart, caption)


def distribution_over_training(m: Marts, st: Style) -> Drawn | Absent:
    """The matched-prefix distribution of each model at its checkpoints (one panel a model)."""
    df = m.dist_training
    if df is None or df.is_empty():
        return Absent("Needs score distributions of at least two checkpoints of a model.")
    multi = df.group_by("model").agg(pl.col("revision").n_unique().alias("n"))
    keep = multi.filter(pl.col("n") >= 2)["model"].to_list()
    df = df.filter(pl.col("model").is_in(keep))
    if df.is_empty():
        return Absent("Needs score distributions of at least two checkpoints of a model.")
    models = [x for x in m.model_order if x in set(keep)]
    part = _with_gaps(
        df.select("model", "revision", "step", "bin_lower", "bin_upper", "n_sequences", "fraction")
    )
    part = part.with_columns(
        pl.col("step").fill_null(strategy="forward").over(["model", "revision"])
    )
    steps = part.group_by(["model", "revision"]).agg(pl.col("step").drop_nulls().first())
    part = part.drop("step").join(steps, on=["model", "revision"], how="left")
    base = alt.Chart(
        inline(
            part, "model", "revision", "step", "bin_lower", "bin_upper", "n_sequences", "fraction"
        )
    ).encode(
        x=alt.X(
            "bin_lower:Q",
            title=_METRIC_AXIS["prefix_match_len"].split(" (")[0] + " (tokens)",
            scale=alt.Scale(zero=True, nice=False),
        ),
        y=alt.Y(
            "fraction:Q",
            title="fraction of sequences (log scale)",
            scale=alt.Scale(type="log"),
            axis=alt.Axis(format="~e" if (part["fraction"].min() or 1) < 1e-4 else "~%"),
        ),
        color=alt.Color(
            "step:O", title="checkpoint (training step)", scale=alt.Scale(scheme=STEP_SCHEME)
        ),
        detail="revision:N",
    )
    tooltip = [
        alt.Tooltip("model:N"),
        alt.Tooltip("revision:N"),
        alt.Tooltip("bin_lower:Q", title="matched prefix ≥", format=",.0f"),
        alt.Tooltip("n_sequences:Q", title="sequences", format=","),
        alt.Tooltip("fraction:Q", format=".3~e"),
    ]
    # points too: an isolated bin (the spike of memorized sequences at the maximum) has no
    # neighbour for a line to reach
    layer = base.mark_line(strokeWidth=1.3, interpolate="step-after") + base.mark_point(
        filled=True, size=16
    ).encode(tooltip=tooltip)
    chart = layer.properties(width=PANEL_WIDTH, height=170).facet(
        facet=alt.Facet("model:N", title=None, sort=models), columns=2
    )
    big = df.filter(pl.col("model") == models[-1])
    top = big["bin_lower"].max()
    tail = big.filter(pl.col("bin_lower") == top).sort("step")
    quoted = ""
    if tail.height >= 2:
        quoted = (
            f" {models[-1]}: the top bin (matched prefix ≥ {top:g}) holds "
            f"{fmt_pct(tail['fraction'][0])} of sequences at step {tail['step'][0]:,} and "
            f"{fmt_pct(tail['fraction'][-1])} at step {tail['step'][-1]:,}."
        )
    caption = (
        "Distribution of the matched-prefix length (tokens of the greedy continuation equal to "
        f"the truth) at each checkpoint, one panel per model, over the sequences of {m.dataset}; "
        f"log axis, later checkpoints lighter.{quoted}"
    )
    return Drawn(chart, caption)
