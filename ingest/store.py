"""Database side of ingest: connection settings, transactions, and raw.runs bookkeeping.

Shared by the shard loader (loader.py) and the importers (importers.py) so that every
path into the raw layer writes runs, score rows and ingested_files the same way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from memwh.core.db import connect
from memwh.ingest.schema import ensure_raw_schema

# raw.runs columns filled from a manifest (or an importer's equivalent dict), with the
# kind each must have. Anything else in the manifest is kept only in the `manifest` JSON.
RUN_FIELDS: dict[str, str] = {
    "run_id": "str",
    "model": "str",
    "revision": "str",
    "step": "int",
    "family": "str",
    "model_path": "str",
    "commit_hash": "str",
    "n_params": "int",
    "non_embedding_params": "int",
    "tokens_per_step": "int",
    "sequences_per_step": "int",
    "tokens_seen": "int",
    "train_flops": "float",
    "dtype": "str",
    "device": "str",
    "batch_size": "int",
    "prompt_len": "int",
    "cont_len": "int",
    "mode": "str",
    "suppress_eos": "bool",
    "data_source": "str",
    "data_fingerprint": "str",
    "shard": "int",
    "num_shards": "int",
    "seq_start": "int",
    "seq_end": "int",
    "n_rows": "int",
    "started_at": "time",
    "finished_at": "time",
    "host": "str",
    "slurm_job_id": "str",
    "slurm_array_job_id": "str",
    "slurm_array_task_id": "str",
    "versions": "json",
    "git_sha": "str",
    "role": "str",
    "variant_of": "str",
    "method": "str",
    "method_params": "json",
}

_ARROW_TYPES = {
    "str": pa.string(),
    "int": pa.int64(),
    "float": pa.float64(),
    "bool": pa.bool_(),
    "time": pa.timestamp("us"),
    "json": pa.string(),
}
RUNS_ARROW_SCHEMA = pa.schema(
    [pa.field(k, _ARROW_TYPES[v]) for k, v in RUN_FIELDS.items()]
    + [
        pa.field("run_key", pa.int32()),
        pa.field("source", pa.string()),
        pa.field("population", pa.int64()),
        pa.field("rows_are_sparse", pa.bool_()),
        pa.field("manifest", pa.string()),
        pa.field("source_path", pa.string()),
        pa.field("ingested_at", pa.timestamp("us")),
    ]
)


def total_memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def duckdb_settings(threads: int | None = None, memory_limit: str | None = None) -> dict[str, Any]:
    """Threads = all cores, memory_limit = 60% of RAM unless given (or MEMWH_DUCKDB_THREADS /
    MEMWH_DUCKDB_MEMORY_LIMIT): bulk loads are CPU-bound, and the limit leaves room for the OS
    page cache that serves the Parquet reads."""
    threads = threads or int(os.environ.get("MEMWH_DUCKDB_THREADS", 0)) or os.cpu_count() or 1
    memory_limit = memory_limit or os.environ.get("MEMWH_DUCKDB_MEMORY_LIMIT")
    if not memory_limit:
        total = total_memory_bytes()
        memory_limit = f"{max(1, int(total * 0.6) >> 20)}MB" if total else "4GB"
    return {
        "threads": int(threads),
        "memory_limit": memory_limit,
        # Row order inside raw.score_rows carries no meaning; not keeping it lets large
        # INSERTs stream in parallel with bounded memory.
        "preserve_insertion_order": False,
    }


def open_raw(
    db: str | os.PathLike | None,
    *,
    threads: int | None = None,
    memory_limit: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """Writable connection with the raw schema in place; lock errors become MemwhError."""
    con = connect(db, config=duckdb_settings(threads, memory_limit))
    try:
        con.execute("SET enable_progress_bar = false")
        ensure_raw_schema(con)
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN ... COMMIT, ROLLBACK on any error: the database never holds part of a load."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


@contextmanager
def registered(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> Iterator[None]:
    """`table` visible as `name` for the block. A failed statement leaves the transaction
    aborted, and unregistering would then raise "Current transaction is aborted" in place of
    the real error: that secondary error is ignored (register replaces a stale name)."""
    con.register(name, table)
    try:
        yield
    finally:
        with suppress(duckdb.Error):
            con.unregister(name)


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None) -> Any:
    """First column of the first row (DuckDB 2.0: fetchall, never fetchone, see BRIEF)."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0][0] if rows else None


def next_run_keys(con: duckdb.DuckDBPyConnection, n: int) -> list[int]:
    """Fresh run keys from raw.run_key_seq: never reused, even after a run is replaced."""
    rows = con.execute("SELECT nextval('raw.run_key_seq') FROM range(?) ORDER BY 1", [n]).fetchall()
    return [int(r[0]) for r in rows]


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _coerce(field: str, kind: str, value: Any) -> Any:
    if value is None:
        return None
    bad = ValueError(f"manifest field {field!r} = {value!r} is not a {kind}")
    if kind == "str":
        if isinstance(value, dict | list):
            raise bad
        return str(value)
    if kind == "int":
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise bad
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise bad
        try:
            return float(value)
        except ValueError:
            raise bad from None
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise bad
    if kind == "time":
        if isinstance(value, datetime):
            t = value
        elif isinstance(value, str):
            try:
                t = datetime.fromisoformat(value)
            except ValueError:
                raise bad from None
        else:
            raise bad
        return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t
    if kind == "json":
        return json.dumps(value, default=str)
    raise AssertionError(kind)


def run_record(
    manifest: Mapping[str, Any],
    *,
    run_key: int,
    source: str,
    source_path: str,
    population: int | None = None,
    rows_are_sparse: bool = False,
    ingested_at: datetime | None = None,
) -> dict[str, Any]:
    """A raw.runs row from a manifest; ValueError names the field whose type is wrong."""
    row = {k: _coerce(k, kind, manifest.get(k)) for k, kind in RUN_FIELDS.items()}
    if row["step"] is None and row["revision"]:
        from memwh.core.contract import parse_step

        row["step"] = parse_step(row["revision"])
    row.update(
        run_key=run_key,
        source=source,
        # sequences scored: rows / prompt lengths (contract version 2 scores each sequence at
        # every prompt length in the manifest's prompt_lens)
        population=row["n_rows"] // max(1, len(manifest.get("prompt_lens") or [0]))
        if population is None and row["n_rows"] is not None
        else population,
        rows_are_sparse=rows_are_sparse,
        manifest=json.dumps(dict(manifest), default=str),
        source_path=source_path,
        ingested_at=ingested_at or now_utc(),
    )
    return row


def insert_runs(con: duckdb.DuckDBPyConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        return
    tbl = pa.Table.from_pylist(list(rows), schema=RUNS_ARROW_SCHEMA)
    with registered(con, "_memwh_new_runs", tbl):
        con.execute("INSERT INTO raw.runs BY NAME SELECT * FROM _memwh_new_runs")


def record_files(con: duckdb.DuckDBPyConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Upsert raw.ingested_files rows (path, kind, size, mtime, sha256, run_id, n_rows)."""
    if not rows:
        return
    tbl = pa.Table.from_pylist(
        [{**r, "ingested_at": r.get("ingested_at") or now_utc()} for r in rows],
        schema=pa.schema(
            [
                ("path", pa.string()),
                ("kind", pa.string()),
                ("size", pa.int64()),
                ("mtime", pa.float64()),
                ("sha256", pa.string()),
                ("run_id", pa.string()),
                ("n_rows", pa.int64()),
                ("ingested_at", pa.timestamp("us")),
            ]
        ),
    )
    with registered(con, "_memwh_new_files", tbl):
        con.execute(
            "INSERT INTO raw.ingested_files BY NAME SELECT * FROM _memwh_new_files "
            "ON CONFLICT (path) DO UPDATE SET kind = excluded.kind, size = excluded.size, "
            "mtime = excluded.mtime, sha256 = excluded.sha256, run_id = excluded.run_id, "
            "n_rows = excluded.n_rows, ingested_at = excluded.ingested_at"
        )


def delete_runs(con: duckdb.DuckDBPyConnection, run_keys: Sequence[int]) -> int:
    """Remove runs with their score and generation rows; returns the number of score rows deleted."""
    if not run_keys:
        return 0
    keys = pa.table({"run_key": pa.array(list(run_keys), pa.int32())})
    with registered(con, "_memwh_old_keys", keys):
        n = scalar(
            con, "DELETE FROM raw.score_rows WHERE run_key IN (SELECT run_key FROM _memwh_old_keys)"
        )
        con.execute(
            "DELETE FROM raw.generation_rows WHERE run_key IN (SELECT run_key FROM _memwh_old_keys)"
        )
        con.execute("DELETE FROM raw.runs WHERE run_key IN (SELECT run_key FROM _memwh_old_keys)")
    return int(n or 0)


def file_stat(path: Path) -> tuple[int, float]:
    st = path.stat()
    return st.st_size, st.st_mtime
