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

    @app.command("show")
    def show_cmd(
        model: Annotated[str, typer.Option("--model", help="Model label in the warehouse")],
        revision: Annotated[
            str | None,
            typer.Option("--revision", help="Checkpoint (default: the unit's latest step)"),
        ] = None,
        memorized: Annotated[
            bool,
            typer.Option(
                "--memorized/--all",
                help="Only memorized sequences (label of the last build), or all, longest "
                "matches first",
            ),
        ] = False,
        near_misses: Annotated[
            bool,
            typer.Option(
                "--near-misses", help="Only sequences not memorized, longest matches first"
            ),
        ] = False,
        limit: Annotated[int, typer.Option("--limit", "-n", help="Sequences to print")] = 10,
        tokenizer: Annotated[
            str | None,
            typer.Option(
                "--tokenizer", help="Tokenizer folder or hub id (default: the unit's model's)"
            ),
        ] = None,
        ids: Annotated[bool, typer.Option("--ids", help="Print token ids, not text")] = False,
        dataset: Annotated[
            str | None,
            typer.Option(
                "--dataset",
                help="Dataset (data_fingerprint) of the unit, when the checkpoint was scored on "
                "several",
            ),
        ] = None,
        db: DbOpt = None,
    ) -> None:
        """Print what a unit memorized: prompt, true continuation and generation as text,
        with the first mismatch marked."""
        from memwh import texts

        tok = None if ids else (tokenizer or "auto")
        rows = texts.scored_texts(
            model,
            revision,
            memorized=memorized,
            near_misses=near_misses,
            limit=limit,
            db=db,
            tokenizer=tok,
            dataset=dataset,
        )
        typer.echo(texts.render(rows))

    @app.command("tables")
    def tables_cmd(db: DbOpt = None) -> None:
        """List the warehouse's tables and views with their descriptions."""
        from rich.console import Console
        from rich.table import Table

        from memwh import query

        # names never cut: they fold onto a second line; descriptions wrap
        t = Table(expand=False)
        t.add_column("schema", no_wrap=True)
        t.add_column("name", overflow="fold", min_width=12)
        t.add_column("kind", no_wrap=True)
        t.add_column("rows", justify="right", no_wrap=True)
        t.add_column("description", overflow="fold", ratio=1, min_width=20)
        for r in query.tables(db).iter_rows(named=True):
            rows = "" if r["rows"] is None else f"{int(r['rows']):,}"
            first_sentence = r["description"].split(". ")[0].rstrip(".")
            t.add_row(r["schema"], r["name"], r["kind"], rows, first_sentence)
        console = Console()
        console.print(t)
        settings = query.build_settings(db)
        if settings.height:
            s = Table(title=f"build settings (last build {str(settings['built_at'][0])[:19]})")
            s.add_column("var", no_wrap=True)
            s.add_column("value", overflow="fold")
            for r in settings.iter_rows(named=True):
                s.add_row(r["name"], r["value"])
            console.print(s)
