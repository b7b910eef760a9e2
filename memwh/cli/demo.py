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
        study: Annotated[
            str | None,
            typer.Option(
                "--study",
                help="Run an optional study instead of the default demo: 'shadow' (16 tiny "
                "shadow models on random halves + an audited model; counterfactual "
                "memorization and LiRA; ~3-4 min; kept in <home>/shadow/; no report)",
            ),
        ] = None,
    ) -> None:
        """Build the demo suite, score it, ingest, dbt build, and render the report."""
        from memwh.core.errors import MemwhError
        from memwh.demo import run_demo, run_shadow_study

        if study is None:
            run_demo(home, db=db, report=not no_report, quick=quick)
        elif study == "shadow":
            if quick:
                raise MemwhError("--quick applies to the default demo, not to --study shadow")
            run_shadow_study(home, db=db)
        else:
            raise MemwhError(f"--study {study!r}: the optional studies are: shadow")
