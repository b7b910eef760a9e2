"""`memwh report`: draw the marts into an offline HTML report and PNGs."""

from __future__ import annotations

from pathlib import Path

import typer

from memwh.cli.options import DbOpt


def register(app: typer.Typer) -> None:
    @app.command("report")
    def report(
        db: DbOpt = None,
        out: Path | None = typer.Option(
            None, "--out", help="Output folder (default: <data dir>/report)."
        ),
        fmt: str = typer.Option(
            "html,png",
            "--format",
            "-f",
            help="Comma-separated: html (the report page), svg, pdf, png (one file per chart "
            "in OUT/charts/, with captions.md).",
        ),
        png: bool = typer.Option(
            True, "--png/--no-png", help="Shorthand: --no-png drops png from --format."
        ),
        dataset: str | None = typer.Option(
            None,
            "--dataset",
            help="Dataset (data_fingerprint) to draw when the warehouse holds several "
            "(default: the one with the most units).",
        ),
    ) -> None:
        """Write OUT/report.html (self-contained, opens offline) and OUT/charts/<figure>.svg,
        .pdf, .png from the warehouse marts. Run `memwh build` first."""
        from rich.console import Console
        from rich.markup import escape

        from memwh.reports import MAX_REPORT_BYTES, render_report

        formats = [f for f in fmt.split(",") if png or f.strip().lower() != "png"]
        res = render_report(db, out, formats=formats, progress=True, dataset=dataset)
        console = Console()
        if res.warning:
            Console(stderr=True).print(
                f"[yellow]warning:[/] {escape(res.warning)}", highlight=False, soft_wrap=True
            )
        for key, note in res.notes.items():
            console.print(f"[yellow]note[/] {key}: {escape(note)}", highlight=False)
        written = ", ".join(f"{len(v)} {k.upper()}" for k, v in res.files.items())
        if res.html is not None:
            size = f"{res.html_bytes / 1e6:.2f} MB"
            if not res.within_budget:
                size += f" [red](over the {MAX_REPORT_BYTES / 1e6:.0f} MB budget)[/]"
            console.print(
                f"report: {escape(str(res.html))} ({size}, {len(res.charts)} charts) "
                f"in {res.seconds:.1f}s",
                highlight=False,
            )
        if res.files:
            console.print(
                f"charts: {written} + {res.captions} in {res.seconds:.1f}s", highlight=False
            )
