"""What every figure of the report shares: the Section it becomes, the model colours, the
print theme, and small encoding/formatting helpers.

Models are coloured by one shared scale whose domain is ordered by parameter count, so a
model has the same colour in every chart and the colours run dark -> light with size
(viridis: colour-blind safe and readable in greyscale). Other categories use the Okabe-Ito
palette (colour-blind safe). Figures carry no title: the title is the report's heading and
the caption file's, so a figure drops into a paper as it is.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import altair as alt
import polars as pl

WIDTH = 560
HEIGHT = 320
PANEL_WIDTH = 300
# Viridis anchors without the pale yellow end (unreadable on white); sampled per model.
_VIRIDIS = ["#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30"]
STEP_SCHEME = alt.SchemeParams(name="inferno", extent=[0.15, 0.85])


# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour
# vision deficiency.
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"


def print_theme(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    """Sizes fit for a printed page (axis labels 11 pt, titles 12 pt at 100% width), no
    chart border, Okabe-Ito for categories, a fixed chart width (set per figure)."""
    return (
        chart.configure(font=FONT, padding=8)
        .configure_axis(
            labelFontSize=11, titleFontSize=12, titleFontWeight="normal", gridColor="#e6e6e6"
        )
        .configure_legend(labelFontSize=11, titleFontSize=12, titleFontWeight="normal")
        .configure_header(labelFontSize=12, titleFontSize=12)
        .configure_view(stroke=None)
        .configure_range(category=OKABE_ITO)
    )


@dataclass
class Absent:
    """A figure that cannot be drawn for this warehouse, and why (shown in its place)."""

    note: str


@dataclass
class Drawn:
    """A drawn figure: the chart and the caption computed from the data it shows."""

    chart: alt.TopLevelMixin | None
    caption: str
    note: str | None = None
    table_html: str | None = None


@dataclass
class Section:
    """One figure of the report: a chart, or a note explaining why it is absent."""

    key: str  # file stem of the chart files and DOM id, e.g. "01_rate_vs_params"
    title: str
    caption: str  # what the figure shows, with the numbers it shows
    chart: alt.TopLevelMixin | None = None
    note: str | None = None  # shown in place of the chart (or under it)
    table_html: str | None = None


@dataclass(frozen=True)
class Style:
    """The shared model colour scale (domain ordered by parameter count)."""

    models: tuple[str, ...]
    colors: tuple[str, ...]

    @classmethod
    def for_models(cls, models: Sequence[str]) -> Style:
        return cls(tuple(models), tuple(model_colors(len(models))))

    def color(self, field: str = "model", title: str = "model (by size)") -> alt.Color:
        return alt.Color(
            f"{field}:N",
            title=title,
            scale=alt.Scale(domain=list(self.models), range=list(self.colors)),
            sort=list(self.models),
        )


def model_colors(n: int) -> list[str]:
    """n colours along viridis, dark (smallest model) to light (largest)."""

    def rgb(h: str) -> tuple[int, ...]:
        return tuple(int(h[i : i + 2], 16) for i in (1, 3, 5))

    out = []
    for i in range(n):
        t = 0.0 if n == 1 else i / (n - 1) * (len(_VIRIDIS) - 1)
        lo = min(int(t), len(_VIRIDIS) - 2)
        f = t - lo
        a, b = rgb(_VIRIDIS[lo]), rgb(_VIRIDIS[lo + 1])
        out.append(
            "#" + "".join(f"{round(x + (y - x) * f):02x}" for x, y in zip(a, b, strict=True))
        )
    return out


def line_with_points(base: alt.Chart, tooltip: list, size: int = 50) -> alt.LayerChart:
    """One line per series with filled points that carry the tooltip (the report's look for
    rates and counts over an axis)."""
    return base.mark_line(strokeWidth=1.5) + base.mark_point(filled=True, size=size).encode(
        tooltip=tooltip
    )


def rate_tooltip(with_scored: bool = True) -> list[alt.Tooltip]:
    """The tooltip rows every memorization-rate point ends with."""
    return [
        *([alt.Tooltip("n_scored:Q", title="sequences scored", format=",")] if with_scored else []),
        alt.Tooltip("n_memorized:Q", title="memorized", format=","),
        alt.Tooltip("memorization_rate:Q", title="memorization rate", format=".3%"),
    ]


def inline(df: pl.DataFrame, *cols: str) -> alt.Data:
    """Inline rows as JSON-safe values (only `cols`; dates as text, NaN/inf as null)."""
    df = df.select(cols)
    df = df.with_columns(
        [pl.col(c).cast(pl.String) for c, t in df.schema.items() if t.is_temporal()]
        + [
            pl.when(pl.col(c).is_finite()).then(pl.col(c)).otherwise(None).alias(c)
            for c, t in df.schema.items()
            if t.is_float()
        ]
    )
    return alt.Data(values=df.to_dicts())


def spans_decades(values: Sequence[float | None], factor: float = 10.0) -> bool:
    """True when every value is positive and max/min >= factor: a log axis reads better."""
    vals = [v for v in values if v is not None]
    if not vals or any(v <= 0 for v in vals) or len(vals) != len(values):
        return False
    return max(vals) / min(vals) >= factor


def rate_axis(values: Sequence[float | None], what: str = "memorization rate") -> alt.Y:
    log = spans_decades(values)
    return alt.Y(
        "memorization_rate:Q",
        title=f"{what} (% of sequences{', log scale' if log else ''})",
        scale=alt.Scale(type="log") if log else alt.Scale(zero=True),
        axis=alt.Axis(format=".2~%"),
    )


def params_x(field: str = "n_params", title: str = "parameters") -> alt.X:
    return alt.X(
        f"{field}:Q",
        title=f"{title} (count, log scale)",
        scale=alt.Scale(type="log", nice=False, padding=12),
        axis=alt.Axis(format="~s", tickCount=6),
    )


def fmt_count(n: float | None) -> str:
    if n is None:
        return "–"
    for div, suf in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g}{suf}"
    return f"{n:g}"


def fmt_pct(x: float | None, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}%}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], numeric: set[int]) -> str:
    """A plain HTML table; every cell escaped, numeric columns right-aligned."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{html.escape(str(v))}</td>'
            if i in numeric
            else f"<td>{html.escape('' if v is None else str(v))}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def pr_long(df: pl.DataFrame) -> pl.DataFrame:
    """precision and recall rows stacked (metric, value, lo, hi) for faceting."""
    keep = [
        c for c in df.columns if c not in {"precision_lo", "precision_hi", "recall_lo", "recall_hi"}
    ]
    parts = []
    for metric in ("precision", "recall"):
        parts.append(
            df.select(
                *keep,
                pl.lit(metric).alias("metric"),
                pl.col(metric).alias("value"),
                pl.col(f"{metric}_lo").alias("lo"),
                pl.col(f"{metric}_hi").alias("hi"),
            )
        )
    return pl.concat(parts)


PR_LONG = ("metric", "value", "lo", "hi", "tp", "fp", "fn")


def pr_tooltip(extra: Sequence[alt.Tooltip]) -> list[alt.Tooltip]:
    return [
        *extra,
        alt.Tooltip("metric:N"),
        alt.Tooltip("value:Q", title="value", format=".3f"),
        alt.Tooltip("lo:Q", title="95% CI low (Wilson)", format=".3f"),
        alt.Tooltip("hi:Q", title="95% CI high (Wilson)", format=".3f"),
        alt.Tooltip("tp:Q", title="true positives", format=","),
        alt.Tooltip("fp:Q", title="false positives", format=","),
        alt.Tooltip("fn:Q", title="false negatives", format=","),
    ]
