"""Project-wide defaults shared by every command (paths, database location)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WAREHOUSE_DIR = PROJECT_ROOT / "warehouse"


def data_dir() -> Path:
    """Where the demo and default outputs live (override with MEMWH_HOME)."""
    return Path(os.environ.get("MEMWH_HOME", PROJECT_ROOT / "data"))


def default_db() -> Path:
    """The warehouse file: MEMWH_DB, else data/memwh.duckdb. dbt's profile uses the same rule."""
    env = os.environ.get("MEMWH_DB")
    return Path(env) if env else data_dir() / "memwh.duckdb"


def resolve_db(db: str | os.PathLike | None) -> Path:
    return Path(db) if db else default_db()
