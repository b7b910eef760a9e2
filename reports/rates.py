"""Figures of memorization rates: against model size, over training, per model family, and
against duplication in the training data. Captions quote the numbers drawn."""

from __future__ import annotations

import math

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
    line_with_points,
    params_x,
    rate_axis,
    rate_tooltip,
    spans_decades,
)


def _loglog_slope(xs: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of log(y) on log(x) over the points with x, y > 0."""
    pts = [
        (math.log(x), math.log(y))
        for x, y in zip(xs, ys, strict=True)
        if x and y and x > 0 and y > 0
    ]
    if len(pts) < 2:
        return None
    mx = sum(p[0] for p in pts) / len(pts)
    my = sum(p[1] for p in pts) / len(pts)
    sxx = sum((p[0] - mx) ** 2 for p in pts)
    if sxx == 0:
        return None
    return sum((p[0] - mx) * (p[1] - my) for p in pts) / sxx


def rate_vs_params(m: Marts, st: Style) -> Drawn | Absent:
    df = m.scaling.filter(
        pl.col("n_params").is_not_null() & pl.col("memorization_rate").is_not_null()
    )
    sizes = df["model"].n_unique()
    if sizes < 2:
        return Absent(
            "Needs at least two model sizes with a known parameter count; this warehouse "
            f"has {m.n_models} model{'s' if m.n_models != 1 else ''} ({', '.join(m.model_order)})"
            + (", without a parameter count" if sizes == 0 else "")
            + ". See memorization over training below."
        )
    has_step = df["step"].null_count() < df.height
    color = (
        alt.Color("step:O", title="checkpoint (training step)", scale=alt.Scale(scheme=STEP_SCHEME))
        if has_step
        else alt.Color("revision:N", title="revision")
    )
    base = alt.Chart(
        inline(
            df,
            "family",
            "model",
            "revision",
            "step",
            "n_params",
            "memorization_rate",
            "slope_vs_params",
        )
    ).encode(
        x=params_x(),
        y=rate_axis(df["memorization_rate"].to_list()),
        color=color,
        detail="family:N",
    )
    chart = line_with_points(
        base,
        [
            alt.Tooltip("model:N"),
            alt.Tooltip("revision:N"),
            alt.Tooltip("n_params:Q", title="parameters", format=",.0f"),
            alt.Tooltip("memorization_rate:Q", title="memorization rate", format=".3%"),
            alt.Tooltip("slope_vs_params:Q", title="log-log slope vs params", format=".3f"),
        ],
        size=55,
    ).properties(width=WIDTH, height=HEIGHT)
    last = df.filter(pl.col("step") == pl.col("step").max()) if has_step else df
    parts = []
    for fam in last.partition_by("family", maintain_order=True):
        fam = fam.sort("n_params")
        slope = fam["slope_vs_params"][0]
        lo, hi = fam.row(0, named=True), fam.row(-1, named=True)
        trend = "rises" if hi["memorization_rate"] > lo["memorization_rate"] else "does not rise"
        parts.append(
            f"{fam['family'][0] or 'models'} @ {fam['revision'][0]}: the rate {trend} from "
            f"{fmt_pct(lo['memorization_rate'])} ({lo['model']}) to "
            f"{fmt_pct(hi['memorization_rate'])} ({hi['model']})"
            + (f", log-log slope {slope:.2f} (rate ∝ N^{slope:.2f})" if slope is not None else "")
        )
    shown = df["revision"].n_unique()
    caption = (
        f"Share of the sequences of {m.dataset} that each model memorizes ({m.label}), "
        "against its parameter count; one line per checkpoint. At the last checkpoint: "
        + "; ".join(parts)
        + "."
        + (f" Showing {shown} of {m.n_revisions} checkpoints." if m.n_revisions > shown else "")
    )
    return Drawn(chart, caption)


def rate_over_training(m: Marts, st: Style) -> Drawn | Absent:
    df = m.rates.filter(pl.col("step").is_not_null() & pl.col("memorization_rate").is_not_null())
    multi = df.group_by("model").len().filter(pl.col("len") >= 2)["model"].to_list()
    df = df.filter(pl.col("model").is_in(multi) & pl.col("model").is_in(m.line_models))
    if df.is_empty():
        return Absent(
            "Needs at least two checkpoints (revisions with a training step) of one model."
        )
    log_x = spans_decades(df["step"].to_list(), 30.0)
    base = alt.Chart(
        inline(df, "model", "revision", "step", "n_scored", "n_memorized", "memorization_rate")
    ).encode(
        x=alt.X(
            "step:Q",
            title=f"training step (optimizer steps{', log scale' if log_x else ''})",
            scale=alt.Scale(type="log", nice=False) if log_x else alt.Scale(zero=False),
            axis=alt.Axis(format="~s"),
        ),
        y=rate_axis(df["memorization_rate"].to_list()),
        color=st.color(),
    )
    chart = line_with_points(
        base,
        [
            alt.Tooltip("model:N"),
            alt.Tooltip("revision:N"),
            alt.Tooltip("step:Q", format=","),
            *rate_tooltip(),
        ],
        size=45,
    ).properties(width=WIDTH, height=HEIGHT)
    big = df.filter(pl.col("model") == [x for x in m.line_models if x in multi][-1]).sort("step")
    first, last = big.row(0, named=True), big.row(-1, named=True)
    caption = (
        f"Memorization rate ({m.label}) of each model at each of its checkpoints, over the "
        f"sequences of {m.dataset} scored for that checkpoint. {first['model']}: "
        f"{first['n_memorized']:,} of {first['n_scored']:,} ({fmt_pct(first['memorization_rate'])}) "
        f"at step {first['step']:,}, {last['n_memorized']:,} of {last['n_scored']:,} "
        f"({fmt_pct(last['memorization_rate'])}) at step {last['step']:,}."
    )
    return Drawn(chart, caption)


def rate_by_family(m: Marts, st: Style) -> Drawn | Absent:
    """Side by side per scaling ladder (e.g. Pythia standard vs deduplicated, or a family's
    standard vs perturbed models), final checkpoints."""
    df = m.rates.filter(
        pl.col("is_final_revision")
        & pl.col("n_params").is_not_null()
        & pl.col("ladder").is_not_null()
        & pl.col("memorization_rate").is_not_null()
    ).with_columns(family=pl.col("ladder"))  # a ladder is a family, or a family's role class
    fams = df.group_by("family").len().filter(pl.col("len") >= 2)["family"].sort().to_list()
    if len(fams) < 2:
        have = ", ".join(sorted({f for f in m.rates["ladder"].to_list() if f})) or "none"
        return Absent(
            "Needs two model families (or a family's standard and perturbed models) with at "
            "least two sizes each (e.g. pythia and pythia-deduped); this warehouse has "
            f"{have}."
        )
    df = df.filter(pl.col("family").is_in(fams))
    base = alt.Chart(
        inline(
            df,
            "family",
            "model",
            "revision",
            "n_params",
            "n_scored",
            "n_memorized",
            "memorization_rate",
        )
    ).encode(
        x=params_x(),
        y=rate_axis(df["memorization_rate"].to_list()),
        color=alt.Color("family:N", title="family", sort=fams),
        shape=alt.Shape("family:N", title="family", sort=fams),
    )
    layer = line_with_points(
        base,
        [
            alt.Tooltip("family:N"),
            alt.Tooltip("model:N"),
            alt.Tooltip("revision:N"),
            alt.Tooltip("n_params:Q", title="parameters", format=",.0f"),
            *rate_tooltip(with_scored=False),
        ],
        size=60,
    )
    chart = layer.properties(width=PANEL_WIDTH, height=HEIGHT - 40).facet(
        column=alt.Column("family:N", title=None, sort=fams)
    )
    per = []
    for fam in fams:
        f = df.filter(pl.col("family") == fam).sort("n_params")
        slope = _loglog_slope(f["n_params"].to_list(), f["memorization_rate"].to_list())
        per.append(
            f"{fam}: {fmt_pct(f['memorization_rate'][0])} ({f['model'][0]}) to "
            f"{fmt_pct(f['memorization_rate'][-1])} ({f['model'][-1]})"
            + (f", log-log slope {slope:.2f}" if slope is not None else "")
        )
    caption = (
        f"Memorization rate ({m.label}) of each family's final checkpoints against size, drawn "
        "together so standard and deduplicated training compare at equal size. "
        + "; ".join(per)
        + "."
    )
    return Drawn(chart, caption)


def rate_vs_duplication(m: Marts, st: Style) -> Drawn | Absent:
    df = m.duplication.filter(pl.col("memorization_rate").is_not_null())
    if df.is_empty():
        return Absent(
            "Duplication counts are not known for the scored data: score a dataset with a "
            "`duplicates` column (the demo corpus has one) and ingest it to see this chart."
        )
    base = alt.Chart(
        inline(
            df, "model", "revision", "duplicates", "n_scored", "n_memorized", "memorization_rate"
        )
    ).encode(
        x=alt.X(
            "duplicates:Q",
            title="copies of the sequence in the training data (count, log scale"
            + (", binned by powers of 2)" if m.duplication_binned else ")"),
            scale=alt.Scale(type="log", nice=False, padding=12),
            axis=alt.Axis(format="~s"),
        ),
        y=rate_axis(df["memorization_rate"].to_list()),
        color=st.color(),
    )
    chart = line_with_points(
        base,
        [
            alt.Tooltip("model:N"),
            alt.Tooltip("revision:N"),
            alt.Tooltip("duplicates:Q", title="copies", format=","),
            *rate_tooltip(),
        ],
        size=50,
    ).properties(width=WIDTH, height=HEIGHT)
    caption = (
        f"Memorization rate ({m.label}) of each model (final checkpoint) among the sequences of {m.dataset} that occur a given number of times in its training data. "
        + duplication_trend(df)
    )
    return Drawn(chart, caption)


def duplication_trend(df: pl.DataFrame) -> str:
    """What the plotted points say: the rate per doubling of copies (least-squares slope of
    the rate on log2(copies), in percentage points), per model, smallest and largest."""
    slopes = []
    for part in df.partition_by("model", maintain_order=True):
        pts = part.filter(pl.col("duplicates") >= 1)
        if pts.height < 2:
            continue
        xs = [math.log2(x) for x in pts["duplicates"].to_list()]
        ys = pts["memorization_rate"].to_list()
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        if sxx == 0:
            continue
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
        lo, hi = pts.row(0, named=True), pts.row(-1, named=True)
        slopes.append((part["model"][0], slope, lo, hi))
    if not slopes:
        return "Too few duplication levels to describe a trend."
    first, last = slopes[0], slopes[-1]

    def one(s: tuple) -> str:
        model, slope, lo, hi = s
        return (
            f"{model}: {fmt_pct(lo['memorization_rate'], 1)} at {lo['duplicates']:,} "
            f"cop{'y' if lo['duplicates'] == 1 else 'ies'} to {fmt_pct(hi['memorization_rate'], 1)} at "
            f"{hi['duplicates']:,}, {slope * 100:+.1f} percentage points per doubling"
        )

    text = one(first) + (f"; {one(last)}" if last is not first else "")
    rising = [s for s in slopes if s[1] > 0]
    if len(rising) == len(slopes):
        verdict = "The rate rises with the number of copies for every model"
    elif not rising:
        verdict = "The rate does not rise with the number of copies for any model"
    else:
        verdict = (
            f"The rate rises with the number of copies for {len(rising)} of {len(slopes)} models"
        )
    if len(slopes) >= 2:
        verdict += (
            ", faster for the larger model"
            if last[1] > first[1]
            else ", not faster for the larger model"
        )
    return f"{verdict} ({text})."
