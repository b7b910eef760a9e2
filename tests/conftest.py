"""Session-wide fixtures: the real demo pipeline, run once and shared by every area's tests.

Set MEMWH_TEST_HOME to a folder to reuse a demo run between local pytest sessions (the suite
and the scores are cached there); CI starts from a fresh temporary folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests must never reach for a hub: everything is local.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Files worth keeping after a test run (screenshots, reports)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = os.environ.get("MEMWH_TEST_HOME")
    if env:
        Path(env).mkdir(parents=True, exist_ok=True)
        return Path(env)
    return tmp_path_factory.mktemp("demo-home")


@pytest.fixture(scope="session")
def demo_suite_dir(request: pytest.FixtureRequest) -> Path:
    """The real default demo suite, built once per machine into .pytest_cache (~2-3 min)
    and reused through build_suite's settings-hash cache."""
    from memwh.demo_suite import build_suite

    return build_suite(request.config.cache.mkdir("memwh-demo-suite") / "suite", progress=False)


@pytest.fixture(scope="session")
def demo_run(demo_home: Path, demo_suite_dir: Path):
    """The whole demo pipeline (suite -> scores -> ingest -> dbt build -> report), once."""
    from memwh.demo import run_demo

    return run_demo(demo_home, suite_dir=demo_suite_dir, db=demo_home / "memwh.duckdb")


@pytest.fixture(scope="session")
def demo_db(demo_run) -> Path:
    return demo_run.db
