"""Session-scoped warehouse DBs: each is built once (dbt startup costs seconds per run)."""

from __future__ import annotations

from pathlib import Path

import pytest
from wh_fixtures import load_pr161, load_toy, make_db


@pytest.fixture(scope="session")
def toy_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from memwh.warehouse.build import build

    d = tmp_path_factory.mktemp("wh-toy")
    db = make_db(d / "toy.duckdb", load_toy)
    result = build(db, quiet=True, target_path=d / "target")
    assert result.success
    return db


@pytest.fixture(scope="session")
def pr161_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from memwh.warehouse.build import build

    d = tmp_path_factory.mktemp("wh-pr161")
    db = d / "pr161.duckdb"
    load_pr161(db)
    build(db, quiet=True, target_path=d / "target")
    return db
