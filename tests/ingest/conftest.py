"""Fixtures for ingest tests (helpers live in ingest_helpers.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from memwh.config import PROJECT_ROOT

# pytest puts tests/ on sys.path (tests/conftest.py has no package), where the folder
# tests/ingest would shadow the real `ingest` package as a namespace package; with the
# project root on sys.path the regular package wins.
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from ingest_helpers import write_shard


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A results root with one complete 2-shard unit (1000 sequences)."""
    r = tmp_path / "runs"
    write_shard(r, shard=0)
    write_shard(r, shard=1)
    return r


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "wh.duckdb"
