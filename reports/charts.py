"""One function per figure of the report, each returning a `Section`.

A section holds either an Altair chart or a visible note saying why it cannot be drawn for
this warehouse (e.g. one model only), never an exception: a study with one model still gets
a report. Models are coloured by one shared scale whose domain is ordered by parameter count,
so a model has the same colour in every chart and the colours run dark -> light with size.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

import altair as alt
import polars as pl

from memwh.reports.data import Marts

WIDTH = 560
HEIGHT = 320
PANEL_WIDTH = 300
# Viridis anchors without the pale yellow end (unreadable on white); sampled per model.
_VIRIDIS = ["#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30"]
_STEP_SCHEME = alt.SchemeParams(name="inferno", extent=[0.15, 0.85])


@dataclass
class Section:
    """One figure of the report: a chart, or a note explaining why it is absent."""

    key: str  # file stem of the PNG and DOM id, e.g. "01_rate_vs_params"
    title: str
    caption: str  # what the figure shows and how to read it
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


# ---------------------------------------------------------------- helpers


def _values(df: pl.DataFrame, *cols: str) -> alt.Data:
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


def _spans_decades(values: Sequence[float | None], factor: float = 10.0) -> bool:
    """True when every value is positive and max/min >= factor: a log axis reads better."""
    vals = [v for v in values if v is not None]
    if not vals or any(v <= 0 for v in vals) or len(vals) != len(values):
        return False
    return max(vals) / min(vals) >= factor


def _rate_axis(values: Sequence[float | None], what: str = "memorization rate") -> alt.Y:
    log = _spans_decades(values)
    return alt.Y(
        "memorization_rate:Q",
        title=f"{what} (% of sequences{', log scale' if log else ''})",
        scale=alt.Scale(type="log") if log else alt.Scale(zero=True),
        axis=alt.Axis(format=".2~%"),
    )


def _params_x(field: str = "n_params", title: str = "parameters") -> alt.X:
    return alt.X(
        f"{field}:Q",
        title=f"{title} (count, log scale)",
        scale=alt.Scale(type="log", nice=False, padding=12),
        axis=alt.Axis(format="~s", tickCount=6),
    )


def _fmt_count(n: float | None) -> str:
    if n is None:
        return "–"
    for div, suf in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= div:
            return f"{n / div:.3g}{suf}"
    return f"{n:g}"


def _fmt_pct(x: float | None, digits: int = 3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}%}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], numeric: set[int]) -> str:
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


def _pr_long(df: pl.DataFrame) -> pl.DataFrame:
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


_PR_LONG = ("metric", "value", "lo", "hi", "tp", "fp", "fn")


def _pr_tooltip(extra: Sequence[alt.Tooltip]) -> list[alt.Tooltip]:
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


# ---------------------------------------------------------------- 1. rate vs parameters


def rate_vs_params(m: Marts, st: Style) -> Section:
    title = "Memorization rate vs model size"
    key = "01_rate_vs_params"
    df = m.scaling.filter(
        pl.col("n_params").is_not_null() & pl.col("memorization_rate").is_not_null()
    )
    sizes = df["model"].n_unique()
    if sizes < 2:
        return Section(
            key,
            title,
            "Fraction of scored sequences each model memorizes, against its size.",
            note="Needs at least two model sizes with a known parameter count; this warehouse "
            f"has {m.n_models} model{'s' if m.n_models != 1 else ''} ({', '.join(m.model_order)})"
            + (", without a parameter count" if sizes == 0 else "")
            + ". See memorization over training below.",
        )
    has_step = df["step"].null_count() < df.height
    color = (
        alt.Color(
            "step:O", title="checkpoint (training step)", scale=alt.Scale(scheme=_STEP_SCHEME)
        )
        if has_step
        else alt.Color("revision:N", title="revision")
    )
    base = alt.Chart(
        _values(
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
        x=_params_x(),
        y=_rate_axis(df["memorization_rate"].to_list()),
        color=color,
        detail="family:N",
    )
    chart = (
        base.mark_line(strokeWidth=1.5)
        + base.mark_point(filled=True, size=55).encode(
            tooltip=[
                alt.Tooltip("model:N"),
                alt.Tooltip("revision:N"),
                alt.Tooltip("n_params:Q", title="parameters", format=",.0f"),
                alt.Tooltip("memorization_rate:Q", title="memorization rate", format=".3%"),
                alt.Tooltip("slope_vs_params:Q", title="log-log slope vs params", format=".3f"),
            ]
        )
    ).properties(width=WIDTH, height=HEIGHT, title=title)
    last = df.filter(pl.col("step") == pl.col("step").max()) if has_step else df
    slopes = last.group_by("family").agg(
        pl.col("slope_vs_params").first(), pl.col("revision").first()
    )
    slope_txt = "; ".join(
        f"{r['family'] or 'models'} @ {r['revision']}: rate ∝ N^{r['slope_vs_params']:.2f}"
        for r in slopes.iter_rows(named=True)
        if r["slope_vs_params"] is not None
    )
    caption = (
        "Fraction of scored sequences that each model reproduces exactly (memorized), against "
        "its parameter count; one line per checkpoint. "
        + (f"Log-log slope at the last checkpoint: {slope_txt}. " if slope_txt else "")
        + (
            f"Showing {df['revision'].n_unique()} of {m.n_revisions} checkpoints."
            if m.n_revisions > df["revision"].n_unique()
            else ""
        )
    )
    return Section(key, title, caption.strip(), chart=chart)


# ---------------------------------------------------------------- 1b. rate over training


def rate_over_training(m: Marts, st: Style) -> Section:
    title = "Memorization rate over training"
    key = "01b_rate_over_training"
    df = m.rates.filter(pl.col("step").is_not_null() & pl.col("memorization_rate").is_not_null())
    multi = df.group_by("model").len().filter(pl.col("len") >= 2)["model"].to_list()
    df = df.filter(pl.col("model").is_in(multi) & pl.col("model").is_in(m.line_models))
    if df.is_empty():
        return Section(
            key,
            title,
            "Memorization rate of each model at each checkpoint.",
            note="Needs at least two checkpoints (revisions with a training step) of one model.",
        )
    log_x = _spans_decades(df["step"].to_list(), 30.0)
    base = alt.Chart(
        _values(df, "model", "revision", "step", "n_scored", "n_memorized", "memorization_rate")
    ).encode(
        x=alt.X(
            "step:Q",
            title=f"training step (optimizer steps{', log scale' if log_x else ''})",
            scale=alt.Scale(type="log", nice=False) if log_x else alt.Scale(zero=False),
            axis=alt.Axis(format="~s"),
        ),
        y=_rate_axis(df["memorization_rate"].to_list()),
        color=st.color(),
    )
    chart = (
        base.mark_line(strokeWidth=1.5)
        + base.mark_point(filled=True, size=45).encode(
            tooltip=[
                alt.Tooltip("model:N"),
                alt.Tooltip("revision:N"),
                alt.Tooltip("step:Q", format=","),
                alt.Tooltip("n_scored:Q", title="sequences scored", format=","),
                alt.Tooltip("n_memorized:Q", title="memorized", format=","),
                alt.Tooltip("memorization_rate:Q", title="memorization rate", format=".3%"),
            ]
        )
    ).properties(width=WIDTH, height=HEIGHT, title=title)
    caption = (
        "Memorization rate of each model at each of its checkpoints. The rate is over the "
        "sequences scored for that checkpoint; when checkpoints were scored on the sequences "
        "they had seen, later checkpoints cover more data."
    )
    return Section(key, title, caption, chart=chart)


# ---------------------------------------------------------------- 2. precision/recall vs size


def _pr_facet(
    df: pl.DataFrame, x: alt.X, color: alt.Color, tooltip: list, title: str, dash: str | None = None
) -> alt.TopLevelMixin:
    long = _pr_long(df)
    base = alt.Chart(
        _values(
            long,
            "predictor_model",
            "predictor_revision",
            "predictor_params",
            "target_model",
            "target_revision",
            *_PR_LONG,
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
            header=alt.Header(labelFontSize=13, labelFontWeight="bold"),
        ),
        row=row,
    ).properties(title=title)


def precision_recall_vs_params(m: Marts, st: Style) -> Section:
    title = "Smaller models predicting what the largest model memorizes"
    key = "02_precision_recall_vs_params"
    df = m.pr_smaller.filter(pl.col("predictor_params").is_not_null())
    if df.is_empty():
        return Section(
            key,
            title,
            "Precision and recall of each smaller model's memorized set as a prediction of "
            "the largest model's (the paper's Fig. 2).",
            note=f"Needs at least two model sizes scored on the same sequences; this warehouse "
            f"has {m.n_models} model{'s' if m.n_models != 1 else ''} ({', '.join(m.model_order)}).",
        )
    tooltip = _pr_tooltip(
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
        _params_x("predictor_params", "predictor parameters"),
        st.color("predictor_model", "predictor model"),
        tooltip,
        title,
    )
    targets = ", ".join(
        f"{r['target_model']} @ {r['target_revision']}"
        for r in df.unique(["target_model", "target_revision"], maintain_order=True).iter_rows(
            named=True
        )
    )
    caption = (
        f"Each smaller model (final checkpoint) predicts that the target ({targets}) memorizes "
        "exactly the sequences it memorizes itself. Precision = share of the predictor's "
        "memorized sequences the target also memorizes; recall = share of the target's "
        "memorized sequences the predictor finds. Whiskers: Wilson 95% intervals. The paper "
        "(Pythia-12B) finds high precision (≈0.9) but low recall for small models."
    )
    return Section(key, title, caption, chart=chart)


# ---------------------------------------------------------------- 3. checkpoints -> final


def checkpoint_precision_recall(m: Marts, st: Style) -> Section:
    title = "Earlier checkpoints predicting the final checkpoint"
    key = "03_checkpoint_precision_recall"
    df = m.pr_checkpoints.filter(pl.col("training_fraction").is_not_null())
    if df.is_empty():
        return Section(
            key,
            title,
            "Precision and recall of an intermediate checkpoint's memorized set as a "
            "prediction of the final checkpoint's (the paper's Table 2).",
            note="Needs at least two checkpoints (training steps) of a model scored on the "
            "same sequences; no model in this warehouse has them.",
        )
    tooltip = _pr_tooltip(
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
    long = _pr_long(df)
    base = alt.Chart(
        _values(
            long,
            "target_model",
            "target_revision",
            "predictor_revision",
            "training_fraction",
            *_PR_LONG,
        )
    ).encode(x=x)
    y = alt.Y("value:Q", title="value (fraction)", scale=alt.Scale(domain=[0, 1]))
    color = st.color("target_model", "model")
    chart = (
        alt.layer(
            base.mark_line(strokeWidth=1.5).encode(y=y, color=color),
            base.mark_rule(strokeWidth=2).encode(y="lo:Q", y2="hi:Q", color=color),
            base.mark_point(filled=True, size=55).encode(y=y, color=color, tooltip=tooltip),
        )
        .properties(width=PANEL_WIDTH, height=HEIGHT - 40)
        .facet(
            column=alt.Column(
                "metric:N",
                title=None,
                sort=["precision", "recall"],
                header=alt.Header(labelFontSize=13, labelFontWeight="bold"),
            ),
        )
        .properties(title=title)
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
            _fmt_pct(r["training_fraction"], 1),
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
    table = _table(
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
    caption = (
        "Each earlier checkpoint predicts that the model's final checkpoint memorizes the "
        "sequences it has memorized so far (population: sequences both had seen, when the "
        "warehouse restricts it). Whiskers: Wilson 95% intervals. The paper finds precision "
        "stays high (≈0.92–0.94) while recall grows with training."
    )
    return Section(key, title, caption, chart=chart, note=note, table_html=table)


# ---------------------------------------------------------------- 4. recall vs compute


def recall_vs_compute(m: Marts, st: Style) -> Section:
    title = "Recall vs predictor compute"
    key = "04_recall_vs_compute"
    df = pl.concat([m.pr_smaller, m.pr_checkpoints.filter(pl.col("is_final_target"))])
    df = df.filter(pl.col("compute_fraction").is_not_null() & (pl.col("compute_fraction") > 0))
    if df.is_empty():
        return Section(
            key,
            title,
            "Recall of each predictor of the final target against its training compute as a "
            "fraction of the target's (the paper's Fig. 4).",
            note="Needs predictors of the final target (smaller models or earlier checkpoints) "
            "with known training compute (train_flops).",
        )
    df = df.with_columns(
        pl.col("predictor_kind").replace(
            {"smaller_model": "smaller model", "earlier_checkpoint": "earlier checkpoint"}
        )
    )
    base = alt.Chart(
        _values(
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
        .properties(width=WIDTH, height=HEIGHT, title=title)
    )
    caption = (
        "Recall of each predictor of the final target against the compute it used (C = 6·N·D: "
        "parameters × tokens seen) as a fraction of the target's. Circles: smaller fully "
        "trained models; triangles: earlier checkpoints of the target. The paper finds that at "
        "equal compute, partially trained checkpoints of the target recall more than smaller "
        "models. Whiskers: Wilson 95% intervals."
    )
    return Section(key, title, caption, chart=chart)


# ---------------------------------------------------------------- 5. score distribution


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


def score_distribution(m: Marts, st: Style) -> Section:
    title = "Distribution of per-sequence scores"
    key = "05_score_distribution"
    df = m.distribution.filter(pl.col("fraction").is_not_null() & (pl.col("fraction") > 0))
    if df.is_empty():
        return Section(
            key,
            title,
            "Share of sequences at each score.",
            note="No score distribution in the warehouse (score_distribution is empty).",
        )
    by_model = df["model"].n_unique() > 1
    color = (
        st.color()
        if by_model
        else alt.Color(
            "step:O", title="checkpoint (training step)", scale=alt.Scale(scheme=_STEP_SCHEME)
        )
        if df["step"].null_count() < df.height
        else alt.Color("revision:N", title="revision")
    )
    panels = []
    metrics = [x for x in _METRIC_AXIS if x in set(df["metric"].to_list())]
    for metric in metrics:
        part = _with_gaps(df.filter(pl.col("metric") == metric))
        base = alt.Chart(
            _values(
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
    chart = (panels[0] if len(panels) == 1 else alt.hconcat(*panels)).properties(title=title)
    shown = (
        "the final checkpoint of each model" if by_model else "the checkpoints of " + df["model"][0]
    )
    caption = (
        f"Share of scored sequences in each score bin for {shown}, on a log axis: most "
        "sequences match only a few tokens, the tail is thick, and the spike at the maximum is "
        "the memorized (exactly reproduced) sequences. Empty bins are not drawn."
    )
    return Section(key, title, caption, chart=chart)


# ---------------------------------------------------------------- 6. agreement heatmap


def agreement_heatmap(m: Marts, st: Style) -> Section:
    title = "Cross-scale agreement of memorized sets (Jaccard)"
    key = "06_agreement_heatmap"
    df = m.agreement.filter(pl.col("jaccard").is_not_null())
    if len(m.heatmap_units) < 2 or df.is_empty():
        return Section(
            key,
            title,
            "Overlap of the memorized sets of every pair of units.",
            note="Needs at least two units (models or checkpoints) scored on the same "
            "sequences; this warehouse has one.",
        )
    order = m.heatmap_units
    base = alt.Chart(
        _values(
            df, "unit_a", "unit_b", "jaccard", "cohen_kappa", "n_both", "n_a", "n_b", "n_common"
        )
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
    chart = chart.properties(width=side, height=side, title=title)
    what = "models' final checkpoints" if "@" not in order[0] else "units (model@revision)"
    caption = (
        f"Jaccard overlap |A∩B| / |A∪B| of the sets of memorized sequences of pairs of {what}, "
        "over the sequences both scored. Neighbouring sizes or checkpoints overlap most; the "
        "diagonal (a unit with itself) is left blank."
    )
    return Section(key, title, caption, chart=chart)


# ---------------------------------------------------------------- 7. duplication


def rate_vs_duplication(m: Marts, st: Style) -> Section:
    title = "Memorization rate vs duplication in the training data"
    key = "07_rate_vs_duplication"
    df = m.duplication.filter(pl.col("memorization_rate").is_not_null())
    if df.is_empty():
        return Section(
            key,
            title,
            "Memorization rate by the number of copies of a sequence in the training data.",
            note="Duplication counts are not known for the scored data: score a dataset with a "
            "`duplicates` column (the demo corpus has one) and ingest it to see this chart.",
        )
    base = alt.Chart(
        _values(
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
        y=_rate_axis(df["memorization_rate"].to_list()),
        color=st.color(),
    )
    chart = (
        base.mark_line(strokeWidth=1.5)
        + base.mark_point(filled=True, size=50).encode(
            tooltip=[
                alt.Tooltip("model:N"),
                alt.Tooltip("revision:N"),
                alt.Tooltip("duplicates:Q", title="copies", format=","),
                alt.Tooltip("n_scored:Q", title="sequences scored", format=","),
                alt.Tooltip("n_memorized:Q", title="memorized", format=","),
                alt.Tooltip("memorization_rate:Q", title="memorization rate", format=".3%"),
            ]
        )
    ).properties(width=WIDTH, height=HEIGHT, title=title)
    caption = (
        "Memorization rate of each model (final checkpoint) among sequences that occur a given "
        "number of times in its training data. Duplication drives memorization: rates rise "
        "roughly log-linearly with the number of copies, and faster for larger models."
    )
    return Section(key, title, caption, chart=chart)


# ---------------------------------------------------------------- 8. units table


def units_table(m: Marts, st: Style) -> Section:
    title = "Scored units and their provenance"
    key = "08_units"
    u = m.units

    def ts(v: object) -> str:
        return "–" if v is None else str(v)[:16]

    rows = [
        (
            r["model"],
            r["revision"],
            "–" if r["step"] is None else f"{r['step']:,}",
            _fmt_count(r["n_params"]),
            f"{r['n_scored']:,}" if r["n_scored"] is not None else "–",
            f"{r['n_memorized']:,}" if r["n_memorized"] is not None else "–",
            _fmt_pct(r["memorization_rate"]),
            r["dtype"],
            r["device"],
            r["mode"],
            r["source"],
            f"{r['prompt_len']}+{r['cont_len']}",
            r["n_shards"],
            ts(r["first_started_at"]),
            ts(r["last_finished_at"]),
            r["hosts"],
        )
        for r in u.iter_rows(named=True)
    ]
    table = _table(
        [
            "model",
            "revision",
            "step",
            "params",
            "scored",
            "memorized",
            "rate",
            "dtype",
            "device",
            "mode",
            "source",
            "prompt+cont",
            "shards",
            "first started",
            "last finished",
            "hosts",
        ],
        rows,
        numeric={2, 3, 4, 5, 6, 12},
    )
    note = f"Showing {u.height} of {m.n_units} units." if m.n_units > u.height else None
    caption = (
        "One row per scored unit (model × revision): sequences scored, memorized (exact "
        "continuation), the rate, and how it was scored (precision, device, decoding mode, "
        "source of the rows, prompt/continuation lengths, shards, dates, hosts)."
    )
    return Section(key, title, caption, note=note, table_html=table)


ALL_CHARTS = (
    rate_vs_params,
    rate_over_training,
    precision_recall_vs_params,
    checkpoint_precision_recall,
    recall_vs_compute,
    score_distribution,
    agreement_heatmap,
    rate_vs_duplication,
    units_table,
)


def build_sections(m: Marts) -> list[Section]:
    """Every figure of the report, in order, with the shared model colours."""
    from memwh.reports.charts_profiles import profile_sections  # imports this module

    st = Style.for_models(m.model_order)
    sections = [fn(m, st) for fn in ALL_CHARTS] + profile_sections(m, st)
    for s in sections:  # what the data layer capped, said where it applies
        if s.chart is not None and m.notes.get(s.key):
            extra = m.notes[s.key][0].upper() + m.notes[s.key][1:] + "."
            s.note = f"{s.note} {extra}" if s.note else extra
    return sections
