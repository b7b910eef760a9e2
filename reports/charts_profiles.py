"""The memorisation-profile figures (docs/profiles.md): the cohort x checkpoint heatmap of
ATT(g, c), the profile per model size, and memorization transitions over training."""

from __future__ import annotations

import altair as alt
import polars as pl

from memwh.reports.data import Marts
from memwh.reports.style import (
    HEIGHT,
    PANEL_WIDTH,
    WIDTH,
    Absent,
    Drawn,
    Style,
    line_with_points,
)
from memwh.reports.style import inline as _values

_MISSING = (
    "The memorisation-profile marts are not in this warehouse (built by an older memwh?); "
    "run `memwh build` again."
)


def _outcome_words(outcome: str | None) -> str:
    return f"{outcome} (lower = memorised)" if outcome == "loss" else str(outcome)


def profile_heatmap(m: Marts, st: Style) -> Drawn | Absent:
    p = m.profiles
    caption = (
        "Difference-in-differences estimate of memorisation (Lesci et al. 2024): for each cohort "
        "(sequences first trained between two checkpoints) and each checkpoint, the change of "
        f"the {_outcome_words(p.outcome if p else None)} since the checkpoint before training "
        "minus the same change on never-trained sequences. Outlined cells: the 95% interval "
        "excludes 0. Cells left of the diagonal (before training) are placebo checks of the "
        "parallel-trends assumption and should be near 0; the diagonal is instantaneous "
        "memorisation, cells to its right show how much of it persists."
    )
    if p is None or p.missing:
        return Absent(_MISSING)
    df = p.cells
    if df.is_empty():
        return Absent(
            "No model has a profile: it needs two or more checkpoints with a training step, "
            "an exposure (`memwh import exposure`) and never-trained control sequences among the "
            "scored ones (see docs/profiles.md).",
        )
    df = df.with_columns(
        ((pl.col("att_lo") > 0) | (pl.col("att_hi") < 0)).alias("excludes_zero"),
        pl.format("{} ({}–{})", "cohort_index", "cohort_first_step", "cohort_last_step").alias(
            "cohort"
        ),
    )
    lim = float(df["att"].abs().max() or 1.0)
    models = [x for x in st.models if x in set(df["model"].to_list())]
    base = alt.Chart(
        _values(
            df, "model", "cohort", "cohort_index", "checkpoint_step", "event_time", "n_treated",
            "n_control", "att", "att_lo", "att_hi", "excludes_zero",
        )
    ).encode(
        x=alt.X("checkpoint_step:O", title="checkpoint (training step)"),
        y=alt.Y(
            "cohort:N",
            title="cohort (index: first steps trained)",
            sort=alt.EncodingSortField("cohort_index", order="ascending"),
        ),
    )  # fmt: skip
    rect = base.mark_rect().encode(
        color=alt.Color(
            "att:Q",
            title=f"ATT ({p.outcome})",
            scale=alt.Scale(scheme="redblue", domain=[-lim, lim], domainMid=0),
        ),
        tooltip=[
            alt.Tooltip("model:N"),
            alt.Tooltip("cohort:N"),
            alt.Tooltip("checkpoint_step:Q", title="checkpoint", format=","),
            alt.Tooltip("event_time:Q", title="event time"),
            alt.Tooltip("att:Q", title="ATT", format=".4f"),
            alt.Tooltip("att_lo:Q", title="95% low", format=".4f"),
            alt.Tooltip("att_hi:Q", title="95% high", format=".4f"),
            alt.Tooltip("n_treated:Q", title="treated", format=","),
            alt.Tooltip("n_control:Q", title="controls", format=","),
        ],
    )
    outline = base.transform_filter("datum.excludes_zero").mark_rect(
        fill=None, stroke="black", strokeWidth=1.5
    )
    chart = (
        (rect + outline)
        .properties(width=PANEL_WIDTH, height=PANEL_WIDTH * 0.8)
        .facet(
            facet=alt.Facet("model:N", title=None, sort=models),
            columns=2,
        )
        .resolve_scale(x="independent", y="independent")
    )
    return Drawn(chart, caption, note=p.heatmap_note)


def profile_lines(m: Marts, st: Style) -> Drawn | Absent:
    p = m.profiles
    caption = (
        "Per model: the cohort-size weighted ATT by checkpoints since training (event time 0 = "
        "instantaneous memorisation, > 0 = persistent, < 0 = placebo, expected near 0) with 95% "
        "intervals (left), and residual memorisation at the model's last checkpoint (right). "
        f"Outcome: {_outcome_words(p.outcome if p else None)}."
    )
    if p is None or p.missing:
        return Absent(_MISSING)
    s = p.summary
    if s.is_empty():
        return Absent("No model has a profile (see the heatmap).")
    by_time = s.filter(pl.col("event_time").is_not_null())
    residual = s.filter(pl.col("kind") == "residual")
    tooltip = [
        alt.Tooltip("model:N"),
        alt.Tooltip("term:N", title="term"),
        alt.Tooltip("estimate:Q", title="ATT", format=".4f"),
        alt.Tooltip("lo:Q", title="95% low", format=".4f"),
        alt.Tooltip("hi:Q", title="95% high", format=".4f"),
        alt.Tooltip("n_cohorts:Q", title="cohorts"),
        alt.Tooltip("n_treated:Q", title="treated", format=","),
        alt.Tooltip("n_control:Q", title="controls", format=","),
    ]
    cols = ("model", "kind", "event_time", "term", "n_cohorts", "n_treated", "n_control",
            "estimate", "lo", "hi")  # fmt: skip
    zero = alt.Chart(alt.Data(values=[{"y": 0}])).mark_rule(color="#888").encode(y="y:Q")
    base = alt.Chart(_values(by_time, *cols)).encode(
        x=alt.X("event_time:Q", title="checkpoints since training (event time)",
                axis=alt.Axis(tickMinStep=1)),
        color=st.color(),
    )  # fmt: skip
    lines = (
        base.mark_errorband(opacity=0.15).encode(
            y=alt.Y("lo:Q", title=f"ATT ({p.outcome})"), y2="hi:Q"
        )
        + base.mark_line(strokeWidth=1.5).encode(y="estimate:Q")
        + base.mark_point(filled=True, size=45).encode(y="estimate:Q", tooltip=tooltip)
        + zero
    ).properties(width=WIDTH, height=HEIGHT)
    if residual.is_empty():
        chart = lines
    else:
        rb = alt.Chart(_values(residual, *cols)).encode(
            x=alt.X("model:N", title="residual (last checkpoint)", sort=list(st.models)),
            color=st.color(),
        )
        res = (
            rb.mark_rule(strokeWidth=2).encode(y=alt.Y("lo:Q", title=None), y2="hi:Q")
            + rb.mark_point(filled=True, size=60).encode(y="estimate:Q", tooltip=tooltip)
            + zero
        ).properties(width=max(60, 40 * residual.height), height=HEIGHT)
        chart = alt.hconcat(lines, res).resolve_scale(y="shared")
    return Drawn(chart, caption)


def transitions_chart(m: Marts, st: Style) -> Drawn | Absent:
    p = m.profiles
    caption = (
        "Per model and checkpoint, among the sequences scored at it and at the previous "
        "checkpoint: memorized now, newly memorized since the previous checkpoint (0 → 1) and "
        "forgotten since then (1 → 0). Forgetting shows that memorization is not monotone in "
        "training (pythia#29)."
    )
    if p is None or p.missing:
        return Absent(_MISSING)
    t = p.transitions
    if t.is_empty():
        return Absent("Needs two or more checkpoints (with a step) of one model.")
    long = t.unpivot(
        index=["model", "from_revision", "to_revision", "to_step", "n_both_scored"],
        on=["n_memorized_to", "n_newly_memorized", "n_forgotten"],
        variable_name="measure",
        value_name="n",
    ).with_columns(
        pl.col("measure").replace_strict(
            {
                "n_memorized_to": "memorized",
                "n_newly_memorized": "newly memorized",
                "n_forgotten": "forgotten",
            }
        )
    )
    base = alt.Chart(
        _values(long, "model", "from_revision", "to_revision", "to_step", "n_both_scored",
                "measure", "n")
    ).encode(
        x=alt.X("to_step:Q", title="checkpoint (training step)", axis=alt.Axis(format="~s")),
        y=alt.Y("n:Q", title="sequences"),
        color=st.color(),
    )  # fmt: skip
    chart = (
        line_with_points(
            base,
            [
                alt.Tooltip("model:N"),
                alt.Tooltip("from_revision:N", title="from"),
                alt.Tooltip("to_revision:N", title="to"),
                alt.Tooltip("measure:N"),
                alt.Tooltip("n:Q", title="sequences", format=","),
                alt.Tooltip("n_both_scored:Q", title="scored at both", format=","),
            ],
            size=40,
        )
        .properties(width=PANEL_WIDTH * 0.75, height=HEIGHT * 0.8)
        .facet(
            column=alt.Column(
                "measure:N", title=None, sort=["memorized", "newly memorized", "forgotten"]
            )
        )
        .resolve_scale(y="independent")
    )
    return Drawn(chart, caption)
