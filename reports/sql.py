"""Bounded reads of the warehouse into polars, shared by every report data module."""

from __future__ import annotations

import duckdb
import polars as pl


def query(con: duckdb.DuckDBPyConnection, sql: str, **params: object) -> pl.DataFrame:
    """Run a query into polars; DECIMAL/HUGEINT become int64 (scale 0: counts) or float
    (JSON and Vega need them, and a count must never print as "2,120.0")."""
    df = con.sql(sql, params=params or None).pl()
    return df.with_columns(
        [
            pl.col(c).cast(pl.Int64 if t.scale == 0 else pl.Float64)
            for c, t in df.schema.items()
            if isinstance(t, pl.Decimal)
        ]
        + [pl.col(c).cast(pl.Int64) for c, t in df.schema.items() if t in (pl.Int128, pl.UInt64)]
    )


def table_names(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Tables and views of the main schema (optional marts are absent from older builds)."""
    return {
        r[0]
        for r in con.sql(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()
    }
