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


def check_writable(path: Path) -> None:
    """A writer needs the file and its folder (DuckDB creates FILE.wal beside it) writable:
    fail before any work, not at the first COMMIT with a misleading error."""
    if path.exists() and not os.access(path, os.W_OK):
        raise MemwhError(
            f"{path}: the database file is read-only for you, nothing was changed; "
            "fix its permissions (chmod u+w) or pass --db with a writable copy"
        )
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise MemwhError(
            f"{path.parent}: the database folder is read-only for you (DuckDB writes "
            f"{path.name}.wal beside the file), nothing was changed; fix its permissions or "
            "pass --db with a path in a writable folder"
        )


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
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise MemwhError(
                f"{path.parent}: cannot create the database folder ({e.strerror or e}); "
                "pass --db with a writable path"
            ) from None
        check_writable(path)
    try:
        return duckdb.connect(str(path), read_only=read_only, config=config or {})
    except duckdb.IOException as e:
        if is_lock_error(e):
            raise MemwhError(lock_message(path, e)) from None
        raise MemwhError(f"{path}: cannot open database ({str(e).splitlines()[0]})") from None
    except duckdb.Error as e:
        raise MemwhError(f"{path}: cannot open database ({str(e).splitlines()[0]})") from None


# The build-completion marker: warehouse/build.py writes a row when a build starts and fills
# `finished_at`/`status` when it ends, so a reader can tell marts left half-rebuilt by a
# killed build (they may disagree with each other) from a finished build.
BUILDS_TABLE = "memwh_meta.builds"
BUILDS_DDL = """
CREATE TABLE IF NOT EXISTS memwh_meta.builds (
    build_id    UUID PRIMARY KEY,
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    status      VARCHAR NOT NULL,  -- running | ok | failed
    pid         INTEGER,
    host        VARCHAR,
    selection   VARCHAR,           -- dbt --select, NULL for a full build
    message     VARCHAR
)
"""


def last_build_warning(con: duckdb.DuckDBPyConnection) -> str | None:
    """One line when the last `memwh build` did not complete (killed, or failed), else None."""
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = 'memwh_meta' AND table_name = 'builds'"
    ).fetchall()
    if not rows[0][0]:
        return None
    # The newest build that did not finish well, unless a full build finished after it
    # (a --select build after a killed one leaves the other marts as they were).
    last = con.execute(
        f"""
        SELECT started_at, status, pid, host, message FROM {BUILDS_TABLE} AS b
        WHERE status <> 'ok' AND NOT EXISTS (
            SELECT 1 FROM {BUILDS_TABLE} AS g
            WHERE g.status = 'ok' AND g.selection IS NULL AND g.started_at > b.started_at)
        ORDER BY started_at DESC LIMIT 1
        """
    ).fetchall()
    if not last:
        return None
    started, status, pid, host, message = last[0]
    when = f"{started:%Y-%m-%d %H:%M:%S} UTC" if started else "?"
    if status == "running":
        why = f"was interrupted (started {when} by PID {pid} on {host}, never finished)"
    else:
        why = f"failed (started {when}: {message or 'see its output'})"
    return (
        f"the last `memwh build` {why}: the marts may disagree with each other; rerun `memwh build`"
    )
