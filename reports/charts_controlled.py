"""Charts of controlled experiments (STUDIES §5, §7): insertion dose-response of perturbed
models beside their standard control, and mitigation (memorized removed vs perplexity cost).

Draw from the bounded slices data_controlled.py reads; registered in charts.ALL_FIGURES.
"""

from __future__ import annotations

import altair as alt
import polars as pl

from memwh.reports.data import Marts
from memwh.reports.style import HEIGHT, PANEL_WIDTH, WIDTH, Absent, Drawn, Style
from memwh.reports.style import inline as _values


def dose_response(m: Marts, st: Style) -> Drawn | Absent:
    df = m.controlled.dose
    if df.is_empty():
        return Absent(
            "No perturbed unit with a standard control: declare roles (`memwh infer --role "
            "perturbed|standard`, or `memwh import role`) for models of the same family, size and "
            "revision that scored the same sequences with the same setting.",
        )
    long = pl.concat(
        [
            df.select(
                "unit", "category", "duplicates_bin", "n_scored",
                pl.lit("perturbed").alias("model_kind"),
                pl.col("n_memorized").alias("memorized"),
                pl.col("memorization_rate").alias("rate"),
                pl.col("memorization_rate_lo").alias("lo"),
                pl.col("memorization_rate_hi").alias("hi"),
                "rate_diff", "rate_diff_lo", "rate_diff_hi",
            ),
            df.select(
                "unit", "category", "duplicates_bin", "n_scored",
                pl.lit("standard (control)").alias("model_kind"),
                pl.col("control_memorized").alias("memorized"),
                pl.col("control_rate").alias("rate"),
                pl.col("control_rate_lo").alias("lo"),
                pl.col("control_rate_hi").alias("hi"),
                "rate_diff", "rate_diff_lo", "rate_diff_hi",
            ),
        ]
    ).with_columns(copies=pl.col("duplicates_bin").cast(pl.String))  # fmt: skip
    order = [str(b) for b in sorted(long["duplicates_bin"].unique().to_list())]
    color = alt.Color(
        "model_kind:N",
        title="model",
        scale=alt.Scale(domain=["perturbed", "standard (control)"], range=["#d62728", "#1f77b4"]),
    )
    base = alt.Chart(_values(long, *long.columns)).encode(
        x=alt.X(
            "copies:O",
            sort=order,
            title="copies inserted (bin: 0, then powers of 2)",
            axis=alt.Axis(labelAngle=0),
        ),
        color=color,
    )
    tooltip = [
        alt.Tooltip("unit:N"),
        alt.Tooltip("category:N"),
        alt.Tooltip("model_kind:N", title="model"),
        alt.Tooltip("copies:O", title="copies (bin)"),
        alt.Tooltip("n_scored:Q", title="sequences", format=","),
        alt.Tooltip("memorized:Q", format=","),
        alt.Tooltip("rate:Q", title="rate", format=".1%"),
        alt.Tooltip("lo:Q", title="Wilson 95% low", format=".1%"),
        alt.Tooltip("hi:Q", title="Wilson 95% high", format=".1%"),
        alt.Tooltip("rate_diff:Q", title="perturbed - standard", format="+.1%"),
        alt.Tooltip("rate_diff_lo:Q", title="difference 95% low", format="+.1%"),
        alt.Tooltip("rate_diff_hi:Q", title="difference 95% high", format="+.1%"),
    ]
    y = alt.Y("rate:Q", title="memorization rate", scale=alt.Scale(domain=[0, 1]))
    layered = alt.layer(
        base.mark_rule(strokeWidth=6, opacity=0.35).encode(
            y=alt.Y("lo:Q", title="memorization rate"), y2="hi:Q"
        ),
        base.mark_line(strokeWidth=1.5).encode(y=y),
        base.mark_point(filled=True, opacity=1).encode(
            y=y,
            tooltip=tooltip,
            shape=alt.Shape("model_kind:N", title="model"),
            # ordinal with its order given: Vega-Lite warns on size over an unsorted nominal field
            size=alt.Size(
                "model_kind:O",
                sort=["perturbed", "standard (control)"],
                scale=alt.Scale(domain=["perturbed", "standard (control)"], range=[110, 40]),
                legend=None,
            ),
        ),
    ).properties(
        width=PANEL_WIDTH if long["category"].n_unique() > 1 else WIDTH, height=HEIGHT * 0.7
    )
    chart = layered.facet(
        column=alt.Column("category:N", title="category"),
        row=alt.Row("unit:N", title="perturbed unit"),
    ).resolve_scale(x="independent")
    caption = (
        "Memorization rate (Wilson 95% intervals) by the number of inserted copies, for each "
        "perturbed model (red) and its standard control (blue): the same family, size and "
        "checkpoint, trained without the insertions and scored on the same sequences with the "
        "same setting. The gap is the effect of the insertion; the 0-copy bin is the "
        "within-model control. Tooltips give the paired difference with Newcombe's 95% interval."
    )
    return Drawn(chart, caption)


def mitigation(m: Marts, st: Style) -> Drawn | Absent:
    df = m.controlled.mitigation
    if df.is_empty():
        return Absent(
            "No edited unit whose base memorizes anything: declare edited models with "
            "`--role edited --variant-of BASE@REVISION` (or `memwh import role`).",
        )
    tooltip = [
        alt.Tooltip("base:N"),
        alt.Tooltip("edited:N"),
        alt.Tooltip("method:N"),
        alt.Tooltip("method_params:N", title="parameters"),
        alt.Tooltip("base_memorized:Q", title="base memorized", format=","),
        alt.Tooltip("n_removed:Q", title="removed", format=","),
        alt.Tooltip("removed_share:Q", title="removed share", format=".1%"),
        alt.Tooltip("n_newly_memorized:Q", title="newly memorized", format=","),
        alt.Tooltip("perplexity_ratio_neither:Q", title="perplexity ratio", format=".3f"),
        alt.Tooltip("perplexity_ratio_held_out:Q", title="ratio on held-out", format=".3f"),
    ]
    base = alt.Chart(_values(df, *df.columns)).encode(
        color=alt.Color("method:N", title="method"),
    )
    x_title = "perplexity ratio edited / base on sequences neither memorizes (t 95%)"
    chart = alt.layer(
        base.mark_rule(strokeWidth=1.2).encode(
            x=alt.X("perplexity_ratio_neither_lo:Q", title=x_title, scale=alt.Scale(zero=False)),
            x2="perplexity_ratio_neither_hi:Q",
            y=alt.Y(
                "removed_share:Q",
                title="memorized sequences removed (Wilson 95%)",
                scale=alt.Scale(domain=[0, 1]),
            ),
        ),
        base.mark_rule(strokeWidth=1.2).encode(
            x="perplexity_ratio_neither:Q", y="removed_share_lo:Q", y2="removed_share_hi:Q"
        ),
        base.mark_point(filled=True, size=80).encode(
            x="perplexity_ratio_neither:Q", y="removed_share:Q", tooltip=tooltip
        ),
    ).properties(width=WIDTH, height=HEIGHT)
    caption = (
        "Each point is an edited model (TinyMem-style mitigation) against its base: the share of "
        "the base's memorized sequences it no longer memorizes (y) and the utility cost as the "
        "perplexity ratio on sequences neither model memorizes (x, 1 = no cost). Up and to the "
        "left is better. Tooltips: newly memorized sequences and the ratio on held-out data."
    )
    return Drawn(chart, caption)
