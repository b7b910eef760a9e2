"""Session-scoped warehouse DBs: each is built once (dbt startup costs seconds per run).

dbt's unit tests read only their own fixtures: their outcome depends on the project's code, the
vars and the raw layer's column types (warehouse/build.py project_fingerprint), never on a
fixture's rows. toy_build runs them on a fresh target (test_incremental asserts it); builds of
other fixtures on the same code and vars pass unit_tests=False instead of repeating them."""

from __future__ import annotations

from pathlib import Path

import pytest
from wh_fixtures import Built, load_pr161, load_toy, make_db


@pytest.fixture(scope="session")
def toy_build(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The toy warehouse, built once on a fresh target: every dbt unit test runs here."""
    from memwh.warehouse.build import build

    d = tmp_path_factory.mktemp("wh-toy")
    db = make_db(d / "toy.duckdb", load_toy)
    result = build(db, quiet=True, target_path=d / "target")
    assert result.success
    return Built(db, d / "target", result)


@pytest.fixture(scope="session")
def toy_db(toy_build: Built) -> Path:
    return toy_build.db


@pytest.fixture(scope="session")
def pr161_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from memwh.warehouse.build import build

    d = tmp_path_factory.mktemp("wh-pr161")
    db = d / "pr161.duckdb"
    load_pr161(db)
    build(db, quiet=True, target_path=d / "target", unit_tests=False)
    return db
