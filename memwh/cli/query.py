"""`memwh sql` and `memwh tables`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from memwh.cli.options import DbOpt


def register(app: typer.Typer) -> None:
    @app.command("sql")
    def sql_cmd(
        statement: Annotated[
            str, typer.Argument(metavar="QUERY", help="SQL to run (read-only); - reads stdin")
        ],
        db: DbOpt = None,
        fmt: Annotated[
            str, typer.Option("--format", "-f", help="table|csv|json|parquet")
        ] = "table",
        out: Annotated[
            Path | None, typer.Option("--out", "-o", help="Write the result to FILE")
        ] = None,
    ) -> None:
        """Ask the warehouse an ad-hoc question (read-only).

        Never waits: while a build or ingest writes the database it fails at once naming the
        writer's PID (and an ingest/build started during a long query fails the same way).
        Table output shows the first 1,000 rows; csv/json/parquet give every row.
        """
        from rich.console import Console
        from rich.markup import escape

        from memwh import query

        text = sys.stdin.read() if statement == "-" else statement
        limit = query.TABLE_ROWS if fmt == "table" else None
        answer = query.ask(text, db, limit=limit)
        err = Console(stderr=True)
        if answer.warning:
            err.print(
                f"[yellow]warning:[/] {escape(answer.warning)}", highlight=False, soft_wrap=True
            )
        rendered = query.export(answer.df, fmt, out)
        if rendered is not None:
            typer.echo(rendered)
        if answer.truncated:
            err.print(
                f"[yellow]note:[/] showing the first {limit:,} rows; for every row use "
                "--format csv (or --format parquet --out FILE)",
                highlight=False,
                soft_wrap=True,
            )

    @app.command("tables")
    def tables_cmd(db: DbOpt = None) -> None:
        """List the warehouse's tables and views with their descriptions."""
        from rich.console import Console
        from rich.table import Table

        from memwh import query

        t = Table("schema", "name", "kind", "rows", "description")
        for r in query.tables(db).iter_rows(named=True):
            rows = "" if r["rows"] is None else f"{r['rows']:,}"
            first_sentence = r["description"].split(". ")[0].rstrip(".")
            t.add_row(r["schema"], r["name"], r["kind"], rows, first_sentence)
        Console().print(t)
