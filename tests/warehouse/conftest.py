"""Session-scoped warehouse DBs: each is built once (dbt startup costs seconds per run)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tests/warehouse would shadow the `warehouse` package as a namespace package when the repo root
# is not on sys.path (editable installs resolve it late): put the root first.
_REPO = str(Path(__file__).resolve().parents[2])
if _REPO not in sys.path:
    sys.path.insert(0, _REPO)
if getattr(sys.modules.get("warehouse"), "__file__", "x") is None:
    del sys.modules["warehouse"]

from wh_fixtures import load_pr161, load_toy, make_db  # noqa: E402


@pytest.fixture(scope="session")
def toy_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from warehouse.build import build

    d = tmp_path_factory.mktemp("wh-toy")
    db = make_db(d / "toy.duckdb", load_toy)
    result = build(db, quiet=True, target_path=d / "target")
    assert result.success
    return db


@pytest.fixture(scope="session")
def pr161_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from warehouse.build import build

    d = tmp_path_factory.mktemp("wh-pr161")
    db = d / "pr161.duckdb"
    load_pr161(db)
    build(db, quiet=True, target_path=d / "target")
    return db
