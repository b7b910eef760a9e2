"""Ad-hoc, read-only questions to the warehouse (`memwh sql`, `memwh tables`).

Connections are opened read-only and closed right after the query, so a query never holds
the DuckDB file longer than it runs (DuckDB allows one writer and no readers beside it).
A query never waits: while `memwh build` or `memwh ingest` writes the file it fails at once
with the writer's PID; an ingest or build started while a query runs fails the same way.
"""

from __future__ import annotations

import json
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


def _to_polars(rel: duckdb.DuckDBPyRelation) -> pl.DataFrame:
    """polars cannot import DuckDB INTERVAL columns: they come back as text ('00:00:03')."""
    if any(str(t) == "INTERVAL" for t in rel.types):
        cols = [
            f'"{c}"::VARCHAR AS "{c}"' if str(t) == "INTERVAL" else f'"{c}"'
            for c, t in zip(rel.columns, rel.types, strict=True)
        ]
        rel = rel.project(", ".join(cols))
    return rel.pl()


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
            df = _to_polars(rel)
            truncated = False
        else:
            df = _to_polars(rel.limit(limit + 1))
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


def _hex_binary(df: pl.DataFrame) -> pl.DataFrame:
    return df.with_columns(
        [pl.col(c).bin.encode("hex") for c, t in df.schema.items() if t == pl.Binary]
    )


def _json_rows(df: pl.DataFrame) -> str:
    """Rows as a JSON array of objects for any column type (polars' writer rejects maps with
    non-string keys and some temporal types); NaN/inf become null, the rest str()."""

    def clean(v: object) -> object:
        if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
            return None
        if isinstance(v, dict):
            return {str(k): clean(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [clean(x) for x in v]
        return v

    return json.dumps([clean(r) for r in df.to_dicts()], default=str)


def _flat_for_csv(df: pl.DataFrame) -> pl.DataFrame:
    """CSV holds scalars only: nested columns (lists, arrays, structs) become JSON text."""
    df = _hex_binary(df)
    nested = [c for c, t in df.schema.items() if t.is_nested()]
    df = df.with_columns(
        [
            pl.Series(c, [None if v is None else str(v) for v in df[c].to_list()], pl.String)
            for c, t in df.schema.items()
            if isinstance(t, pl.Duration | pl.Object)
        ]
    )
    return df.with_columns(
        [
            pl.Series(
                c,
                [None if v is None else json.dumps(v, default=str) for v in df[c].to_list()],
                dtype=pl.String,
            )
            for c in nested
        ]
    )


def export(df: pl.DataFrame, fmt: str, out: str | os.PathLike | None = None) -> str | None:
    """Write `df` as csv/json/parquet to `out` (or return the text when out is None).

    Every column type is written: in CSV, lists and structs are JSON text."""
    if fmt not in FORMATS:
        raise MemwhError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        if out is None:
            raise MemwhError("--format parquet needs --out FILE")
        df.write_parquet(out)
        return None
    if fmt == "csv":
        text = _flat_for_csv(df).write_csv()
    elif fmt == "json":
        text = _json_rows(_hex_binary(df))
    else:
        with pl.Config(tbl_rows=-1, tbl_cols=-1, fmt_str_lengths=60, tbl_width_chars=200):
            text = str(df)
    if out is not None:
        Path(out).write_text(text)
        return None
    return text


def tables(db: str | os.PathLike | None = None) -> pl.DataFrame:
    """Tables and views with their row counts and descriptions: the DuckDB comment (dbt docs
    persisted on marts), else the model's or source's description in the dbt YAML."""
    from memwh.warehouse.build import model_descriptions

    described = model_descriptions()
    df = sql(
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
    fallback = [
        described.get(f"{sch}.{name}" if sch == "raw" else name, "")
        for sch, name in zip(df["schema"], df["name"], strict=True)
    ]
    return df.with_columns(
        pl.when(pl.col("description") == "")
        .then(pl.Series(fallback, dtype=pl.String))
        .otherwise(pl.col("description"))
        .alias("description")
    )


def build_settings(db: str | os.PathLike | None = None) -> pl.DataFrame:
    """The vars of the last `memwh build` (empty before the first build)."""
    present = sql(
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'build_settings'",
        db,
    )["n"][0]
    if not present:
        return pl.DataFrame({"name": [], "value": [], "built_at": []})
    return sql("SELECT name, value, built_at FROM build_settings ORDER BY name", db)
