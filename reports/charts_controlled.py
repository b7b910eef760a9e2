"""Charts of controlled experiments (STUDIES §5, §7): insertion dose-response of perturbed
models beside their standard control, and mitigation (memorized removed vs perplexity cost).

Reads only the marts `insertion_dose_response` and `mitigation_effect`, bounded like every
report query (few units, few categories); registered in charts.build_sections and data._load.
"""

from __future__ import annotations

import altair as alt
import duckdb
import polars as pl

from memwh.reports.data import _q
from memwh.reports.style import HEIGHT, PANEL_WIDTH, WIDTH, Section, Style
from memwh.reports.style import inline as _values

MAX_DOSE_UNITS = 3  # perturbed units (final revisions first) drawn beside their control
MAX_DOSE_CATEGORIES = 4  # categories (most sequences first)
MAX_MITIGATIONS = 200


def load_controlled(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    """Bounded slices of the controlled marts (empty frames when the marts are absent)."""
    have = {
        r[0]
        for r in con.sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
    }
    out = {"dose": pl.DataFrame(), "mitigation": pl.DataFrame()}
    if "insertion_dose_response" in have:
        out["dose"] = _q(
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
        out["mitigation"] = _q(
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


def dose_response(frames: dict[str, pl.DataFrame], st: Style) -> Section:
    title = "Insertion dose-response: perturbed model vs its standard control"
    key = "07b_insertion_dose_response"
    df = frames.get("dose", pl.DataFrame())
    if df.is_empty():
        return Section(
            key,
            title,
            "Memorization rate by copies inserted, for a perturbed model and its standard control.",
            note="No perturbed unit with a standard control: declare roles (`memwh infer --role "
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
    return Section(key, title, caption, chart=chart)


def mitigation(frames: dict[str, pl.DataFrame], st: Style) -> Section:
    title = "Mitigation: memorized sequences removed vs perplexity cost"
    key = "07c_mitigation"
    df = frames.get("mitigation", pl.DataFrame())
    if df.is_empty():
        return Section(
            key,
            title,
            "Share of the base model's memorized sequences an edited model no longer memorizes, "
            "against the perplexity cost.",
            note="No edited unit whose base memorizes anything: declare edited models with "
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
    return Section(key, title, caption, chart=chart)


def controlled_sections(frames: dict[str, pl.DataFrame], st: Style) -> list[Section]:
    return [dose_response(frames, st), mitigation(frames, st)]
