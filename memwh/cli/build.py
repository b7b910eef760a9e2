"""`memwh build` (dbt build of the warehouse) and `memwh docs` (dbt docs generate)."""

from __future__ import annotations

from typing import Annotated

import typer

from memwh.cli.options import DbOpt


def register(app: typer.Typer) -> None:
    @app.command("build")
    def build_cmd(
        db: DbOpt = None,
        select: Annotated[
            list[str] | None,
            typer.Option("--select", "-s", help="dbt node selection (repeatable), e.g. marts"),
        ] = None,
        full_refresh: Annotated[
            bool,
            typer.Option(
                "--full-refresh/--no-full-refresh", help="Recompute incremental models from scratch"
            ),
        ] = False,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only dbt errors")] = False,
        unit_tests: Annotated[
            bool | None,
            typer.Option(
                "--unit-tests/--no-unit-tests",
                help="Run dbt unit tests always / never (default: when the warehouse code, "
                "vars or dbt version changed since they last passed)",
            ),
        ] = None,
        dbt_vars: Annotated[
            str | None,
            typer.Option(
                "--vars",
                help="dbt vars as YAML/JSON, e.g. '{memorized_min_tokens: 64}' (see docs/warehouse.md)",
            ),
        ] = None,
    ) -> None:
        """Rebuild the marts with `dbt build` (models, data tests, unit tests).

        Incremental: only units whose runs changed since the last build are recomputed.
        Data tests run every time; unit tests (which read only fixtures) when the code changed.
        """
        import yaml
        from rich.console import Console

        from memwh.core.errors import MemwhError
        from memwh.warehouse.build import build

        try:
            parsed = yaml.safe_load(dbt_vars) if dbt_vars else None
        except yaml.YAMLError as e:
            raise MemwhError(f"--vars: not YAML/JSON ({str(e).splitlines()[0]})") from None
        if parsed is not None and not isinstance(parsed, dict):
            raise MemwhError("--vars: expected a mapping such as '{memorized_min_tokens: 64}'")
        result = build(
            db,
            select=select or None,
            full_refresh=full_refresh,
            quiet=quiet,
            vars=parsed,
            unit_tests=unit_tests,
        )
        from rich.markup import escape

        err = Console(stderr=True)
        for w in result.warnings:
            err.print(f"[yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)
        err.print(result.summary(), markup=False, highlight=False, soft_wrap=True)

    @app.command(
        "dbt",
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )
    def dbt_cmd(ctx: typer.Context, db: DbOpt = None) -> None:
        """Run any dbt command on the packaged warehouse project and your database.

        Examples: `memwh dbt run --select marts`, `memwh dbt docs generate`,
        `memwh dbt docs serve`, `memwh dbt test --select units`. memwh supplies the project,
        profile, and target/log folders (beside the database file).
        """
        from memwh.warehouse.build import dbt

        if not dbt(ctx.args, db):
            raise typer.Exit(1)

    @app.command("docs")
    def docs_cmd(db: DbOpt = None) -> None:
        """Generate dbt docs (static single-file site) for the warehouse."""
        from rich.console import Console

        from memwh.warehouse.build import docs

        out = docs(db)
        Console(stderr=True).print(
            f"dbt docs: {out}", markup=False, highlight=False, soft_wrap=True
        )
