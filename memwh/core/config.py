"""Project-wide defaults shared by every command (paths, database location).

Data never lives inside the installed package: everything goes to $MEMWH_HOME, by default
`./memwh-data` in the current working directory (so a clone, a cluster scratch folder and a
pip-installed memwh all behave the same way).
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_HOME = "memwh-data"


def data_dir() -> Path:
    """Where the demo and default outputs live: $MEMWH_HOME, else ./memwh-data."""
    return Path(os.environ.get("MEMWH_HOME") or DEFAULT_HOME).absolute()


def default_db() -> Path:
    """The warehouse file: $MEMWH_DB, else $MEMWH_HOME/memwh.duckdb (dbt's profile: same rule)."""
    env = os.environ.get("MEMWH_DB")
    return Path(env).absolute() if env else data_dir() / "memwh.duckdb"


def resolve_db(db: str | os.PathLike | None) -> Path:
    return Path(db).absolute() if db else default_db()


def dbt_target_dir(db: Path) -> Path:
    """dbt's compiled SQL, logs and stamps for one warehouse file: a hidden folder beside it,
    so builds of different files never share (or write into the installed package)."""
    return db.parent / f".{db.name}.dbt"


# The warehouse's default label rule (warehouse/dbt_project.yml var memorized_min_tokens, kept
# equal by tests/inference/test_multi_prompt.py): a row is memorized when its greedy
# continuation matches at least this many tokens. The scoring console counts with it, so the
# number printed after `memwh infer` is the one the warehouse will show.
MEMORIZED_MIN_TOKENS = 32
