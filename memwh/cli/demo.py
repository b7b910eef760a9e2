"""`memwh demo`: the whole pipeline on the embedded tiny-model suite."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memwh.cli.options import DbOpt


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo_cmd(
        home: Annotated[
            Path | None,
            typer.Option(
                "--home",
                help="Folder for suite, scores, DB, report (default: $MEMWH_HOME, else ./memwh-data)",
            ),
        ] = None,
        db: DbOpt = None,
        no_report: Annotated[
            bool, typer.Option("--no-report", help="Skip the HTML report")
        ] = False,
        quick: Annotated[
            bool,
            typer.Option(
                "--quick",
                help="A small suite (2 models x 2 checkpoints) through every stage in about a "
                "minute, kept in <home>/quick/ (an install check, not a study)",
            ),
        ] = False,
    ) -> None:
        """Build the demo suite, score it, ingest, dbt build, and render the report."""
        from memwh.demo import run_demo

        run_demo(home, db=db, report=not no_report, quick=quick)
