"""Fixtures for ingest tests (helpers live in ingest_helpers.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
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
