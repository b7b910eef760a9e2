"""Ad-hoc, read-only questions to the warehouse (`memwh sql`, `memwh tables`).

Connections are opened read-only and closed right after the query, so a query never holds
the DuckDB file longer than it runs (DuckDB allows one writer and no readers beside it).
A query never waits: while `memwh build` or `memwh ingest` writes the file it fails at once
with the writer's PID; an ingest or build started while a query runs fails the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from memwh.core.db import connect, last_build_warning
from memwh.core.errors import MemwhError

FORMATS = ("table", "csv", "json", "parquet")
# Rows drawn as a table: rendering is ~10,000x slower than csv per row (3M rows took 72 s
# and 10 GB), and nobody reads more on a terminal; csv/json/parquet give every row.
TABLE_ROWS = 1000


@dataclass
class Answer:
    """A query's rows plus what the user must know about them."""

    df: pl.DataFrame
    truncated: bool = False  # more rows than the limit exist
    warning: str | None = None  # the last build did not complete (marts may disagree)


def sql(query: str, db: str | os.PathLike | None = None) -> pl.DataFrame:
    """Run one read-only query and return its result as a polars DataFrame."""
    return ask(query, db).df


def ask(query: str, db: str | os.PathLike | None = None, *, limit: int | None = None) -> Answer:
    """Run one read-only query; with `limit`, read at most that many rows (truncated says
    whether there were more) so a huge result costs no more than its first rows."""
    if not query.strip().strip(";").strip():
        raise MemwhError(
            "QUERY is empty: give one SQL statement, e.g. "
            "memwh sql 'select * from memorization_rates limit 10'"
        )
    con = connect(db, read_only=True, hint="run `memwh demo` or `memwh ingest ROOT` first")
    try:
        rel = con.sql(query)
        if rel is None:  # a statement without a result (e.g. SET, PRAGMA with no output)
            return Answer(pl.DataFrame(), warning=last_build_warning(con))
        if limit is None:
            df = rel.pl()
            truncated = False
        else:
            df = rel.limit(limit + 1).pl()
            truncated = df.height > limit
            df = df.head(limit)
        return Answer(df, truncated, last_build_warning(con))
    except duckdb.CatalogException as e:
        first = str(e).splitlines()[0]
        hint = ""
        if "does not exist" in first:
            hint = "; run `memwh build` to create the marts, `memwh tables` lists what exists"
        raise MemwhError(f"query failed: {first}{hint}") from None
    except duckdb.Error as e:
        first = str(e).splitlines()[0]
        if "read-only" in first.lower():
            raise MemwhError(
                "memwh sql is read-only (it opens the file read-only so it never waits for a writer); "
                "use a DuckDB shell for writes"
            ) from None
        raise MemwhError(f"query failed: {first}") from None
    finally:
        con.close()


def export(df: pl.DataFrame, fmt: str, out: str | os.PathLike | None = None) -> str | None:
    """Write `df` as csv/json/parquet to `out` (or return the text when out is None)."""
    if fmt not in FORMATS:
        raise MemwhError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        if out is None:
            raise MemwhError("--format parquet needs --out FILE")
        df.write_parquet(out)
        return None
    if fmt == "csv":
        text = df.write_csv()
    elif fmt == "json":
        text = df.write_json()
    else:
        with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=200):
            text = str(df)
    if out is not None:
        Path(out).write_text(text)
        return None
    return text


def tables(db: str | os.PathLike | None = None) -> pl.DataFrame:
    """Tables and views with their row counts and descriptions (dbt docs persisted as comments)."""
    return sql(
        """
        SELECT t.schema_name AS schema, t.table_name AS name, 'table' AS kind,
               t.estimated_size AS rows, coalesce(t.comment, '') AS description
        FROM duckdb_tables() t WHERE NOT t.internal
        UNION ALL
        SELECT v.schema_name, v.view_name, 'view', NULL, coalesce(v.comment, '')
        FROM duckdb_views() v WHERE NOT v.internal
        ORDER BY schema, name
        """,
        db,
    )
