"""DuckDB connections with the errors users actually hit turned into one-line messages."""

from __future__ import annotations

import os
import re
from pathlib import Path

import duckdb

from memwh.core.config import resolve_db
from memwh.core.errors import MemwhError


def lock_message(db: Path, err: Exception) -> str:
    """DuckDB allows one writer process per file, and no readers beside it."""
    text = str(err)
    holder = ""
    # DuckDB: 'Conflicting lock is held in /usr/bin/python3.11 (PID 8578)'
    m = re.search(r"held in (.+?) \(PID (\d+)\)", text)
    if m:
        holder = f" (held by PID {m.group(2)}, {Path(m.group(1)).name})"
    elif m := re.search(r"PID (\d+)", text):
        holder = f" (held by PID {m.group(1)})"
    return (
        f"{db}: database is locked by another process{holder}, nothing was changed; DuckDB "
        "allows one writer and no other connection at the same time: close the other DuckDB "
        "shell/notebook/dbt run (or wait for it to finish) and retry"
    )


def is_lock_error(err: Exception) -> bool:
    """DuckDB says 'Could not set lock on file ...: Conflicting lock is held in ...'.

    (A transaction write-write conflict also mentions "conflict" but never "set lock".)
    """
    text = str(err).lower()
    return "could not set lock" in text or "conflicting lock" in text


def connect(
    db: str | os.PathLike | None = None,
    *,
    read_only: bool = False,
    must_exist: bool = False,
    hint: str = "run `memwh ingest ROOT` first",
    config: dict | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse; lock and missing-file errors become MemwhError."""
    path = resolve_db(db)
    if (read_only or must_exist) and not path.exists():
        raise MemwhError(f"{path}: no warehouse database here; {hint}")
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return duckdb.connect(str(path), read_only=read_only, config=config or {})
    except duckdb.IOException as e:
        if is_lock_error(e):
            raise MemwhError(lock_message(path, e)) from None
        raise MemwhError(f"{path}: cannot open database ({str(e).splitlines()[0]})") from None
    except duckdb.Error as e:
        raise MemwhError(f"{path}: cannot open database ({str(e).splitlines()[0]})") from None
