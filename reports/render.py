"""`render_report`: marts -> DIR/report.html (self-contained) and, per chart,
DIR/charts/<key>.svg / .pdf / .png (vl-convert, no browser), plus DIR/charts/captions.md
(title and caption of every figure: the figures themselves carry no title, for papers)."""

from __future__ import annotations

import html
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import vl_convert as vlc
from rich.progress import Progress

import memwh
from memwh.core.config import data_dir
from memwh.core.errors import MemwhError
from memwh.reports.charts import Section, build_sections
from memwh.reports.data import load_marts
from memwh.reports.html import build_page, vl_version

MAX_REPORT_BYTES = 5_000_000  # the report must stay shareable (issue 7)
FORMATS = ("html", "svg", "pdf", "png")
CHART_FORMATS = ("svg", "pdf", "png")


@dataclass
class ReportResult:
    """What `render_report` wrote."""

    html: Path | None
    pngs: list[Path]
    html_bytes: int
    charts: list[str]  # keys of the sections drawn as charts
    notes: dict[str, str]  # section key -> the note shown (why a chart is absent or partial)
    seconds: float
    sections: list[str] = field(default_factory=list)
    warning: str | None = None  # the last build did not complete (shown atop the report)
    files: dict[str, list[Path]] = field(default_factory=dict)  # format -> chart files
    captions: Path | None = None

    @property
    def within_budget(self) -> bool:
        return self.html_bytes < MAX_REPORT_BYTES


def report_size(path: str | os.PathLike) -> int:
    """Size in bytes of a report HTML file (the thing people share)."""
    return Path(path).stat().st_size


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def render_report(
    db: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    *,
    png: bool = True,
    formats: Sequence[str] | None = None,
    progress: bool = False,
    dataset: str | None = None,
) -> ReportResult:
    """Read the marts of `db` and write the report into `out`.

    formats: any of html, svg, pdf, png (default html + png, or html only with png=False).
    Charts go to out/charts/<key>.<format> with out/charts/captions.md beside them.
    dataset: the dataset drawn when the warehouse holds several (default: most units)."""
    t0 = time.perf_counter()
    if formats is None:
        formats = ("html", "png") if png else ("html",)
    formats = tuple(dict.fromkeys(f.strip().lower() for f in formats if f.strip()))
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise MemwhError(
            f"--format {','.join(bad) or '(empty)'}: use a comma-separated subset of "
            f"{','.join(FORMATS)}"
        )
    marts = load_marts(db, dataset=dataset)
    out_dir = Path(out) if out else data_dir() / "report"
    sections = build_sections(marts)

    total_scored = int(marts.rates["n_scored"].sum() or 0)
    total_mem = int(marts.rates["n_memorized"].sum() or 0)
    summary = {
        "models": str(marts.n_models),
        "units (model × revision)": f"{marts.n_units:,}",
        "sequence scores": f"{total_scored:,}",
        "memorized": f"{total_mem:,}",
    }
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    meta = (
        f"Warehouse <code>{html.escape(str(marts.db))}</code> · generated {generated} · "
        f"memwh {html.escape(memwh.__version__)} · models by size: "
        + html.escape(", ".join(marts.model_order))
    )
    if marts.build_warning:
        meta += f"<br><strong>Warning: {html.escape(marts.build_warning)}</strong>"
    footer = (
        f"Definitions follow Biderman et al., “Emergent and Predictable Memorization in Large "
        f"Language Models” (NeurIPS 2023). In this build a sequence is memorized when "
        f"{marts.label}, prompted with its first {marts.prompt_text} tokens. Dataset: "
        f"{marts.dataset}."
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = None
    if "html" in formats:
        page = build_page(
            sections, title="Memorization report", meta_html=meta, summary=summary, footer=footer
        )
        html_path = out_dir / "report.html"
        _write_atomic(html_path, page.encode("utf-8"))

    drawn = [s for s in sections if s.chart is not None]
    chart_formats = [f for f in CHART_FORMATS if f in formats]
    files: dict[str, list[Path]] = {}
    captions = None
    if chart_formats:
        folder = out_dir / "charts"
        files = _write_charts(drawn, folder, [s.key for s in sections], chart_formats, progress)
        captions = folder / "captions.md"
        _write_atomic(captions, _captions(sections, footer).encode("utf-8"))
    return ReportResult(
        html=html_path,
        pngs=files.get("png", []),
        html_bytes=report_size(html_path) if html_path else 0,
        charts=[s.key for s in drawn],
        notes={s.key: s.note for s in sections if s.note},
        seconds=time.perf_counter() - t0,
        sections=[s.key for s in sections],
        warning=marts.build_warning,
        files=files,
        captions=captions,
    )


def _captions(sections: list[Section], footer: str) -> str:
    """Title and caption of every figure (the chart files carry none), for a paper's LaTeX."""
    out = ["# Figures and captions", "", footer, ""]
    for s in sections:
        out += [f"## {s.key}: {s.title}", "", s.caption]
        if s.note:
            out += ["", f"Note: {s.note}"]
        out.append("")
    return "\n".join(out)


def _write_charts(
    drawn: list[Section],
    folder: Path,
    all_keys: list[str],
    formats: Sequence[str],
    progress: bool,
) -> dict[str, list[Path]]:
    """One file per drawn chart and format; stale files of charts now shown as notes go."""
    folder.mkdir(parents=True, exist_ok=True)
    for key in all_keys:
        for fmt in CHART_FORMATS:
            (folder / f"{key}.{fmt}").unlink(missing_ok=True)
    convert = {
        "svg": lambda spec, v: vlc.vegalite_to_svg(spec, vl_version=v).encode("utf-8"),
        "pdf": lambda spec, v: vlc.vegalite_to_pdf(spec, vl_version=v),
        "png": lambda spec, v: vlc.vegalite_to_png(spec, vl_version=v, scale=2),
    }
    out: dict[str, list[Path]] = {f: [] for f in formats}
    version = vl_version()
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("rendering charts", total=len(drawn) * len(formats))
        for s in drawn:
            spec = s.chart.to_dict()
            for fmt in formats:
                path = folder / f"{s.key}.{fmt}"
                _write_atomic(path, convert[fmt](spec, version))
                out[fmt].append(path)
                bar.advance(task)
    return out
