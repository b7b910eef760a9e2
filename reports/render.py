"""`render_report`: marts -> DIR/report.html (self-contained) + DIR/charts/*.png."""

from __future__ import annotations

import html
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import vl_convert as vlc
from rich.progress import Progress

import memwh
from memwh.core.config import data_dir
from memwh.reports.charts import Section, build_sections
from memwh.reports.data import load_marts
from memwh.reports.html import build_page, vl_version

MAX_REPORT_BYTES = 5_000_000  # the report must stay shareable (issue 7)


@dataclass
class ReportResult:
    """What `render_report` wrote."""

    html: Path
    pngs: list[Path]
    html_bytes: int
    charts: list[str]  # keys of the sections drawn as charts
    notes: dict[str, str]  # section key -> the note shown (why a chart is absent or partial)
    seconds: float
    sections: list[str] = field(default_factory=list)
    warning: str | None = None  # the last build did not complete (shown atop the report)

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
    progress: bool = False,
) -> ReportResult:
    """Read the marts of `db` and write `out/report.html` (+ `out/charts/*.png` when png)."""
    t0 = time.perf_counter()
    marts = load_marts(db)
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
    page = build_page(sections, title="Memorization report", meta_html=meta, summary=summary)
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / "report.html"
    _write_atomic(html_path, page.encode("utf-8"))

    pngs: list[Path] = []
    drawn = [s for s in sections if s.chart is not None]
    if png:
        pngs = _write_pngs(drawn, out_dir / "charts", [s.key for s in sections], progress)
    return ReportResult(
        html=html_path,
        pngs=pngs,
        html_bytes=report_size(html_path),
        charts=[s.key for s in drawn],
        notes={s.key: s.note for s in sections if s.note},
        seconds=time.perf_counter() - t0,
        sections=[s.key for s in sections],
        warning=marts.build_warning,
    )


def _write_pngs(
    drawn: list[Section], folder: Path, all_keys: list[str], progress: bool
) -> list[Path]:
    """One PNG per drawn chart; stale PNGs of charts now shown as notes are removed."""
    folder.mkdir(parents=True, exist_ok=True)
    for key in all_keys:
        (folder / f"{key}.png").unlink(missing_ok=True)
    out: list[Path] = []
    version = vl_version()
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("rendering PNGs", total=len(drawn))
        for s in drawn:
            path = folder / f"{s.key}.png"
            data = vlc.vegalite_to_png(s.chart.to_dict(), vl_version=version, scale=2)
            _write_atomic(path, data)
            out.append(path)
            bar.advance(task)
    return out
