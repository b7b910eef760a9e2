"""Fixtures of the report tests: warehouses holding only the marts (built by
report_fixtures.build_marts) and the reports rendered from them, once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fixtures import PYTHIA, PYTHIA_STEPS, build_marts


@pytest.fixture(scope="session")
def multi_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight model sizes x seven checkpoints, every mart filled."""
    return build_marts(tmp_path_factory.mktemp("marts-multi") / "w.duckdb", PYTHIA, PYTHIA_STEPS)


@pytest.fixture(scope="session")
def single_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One model, nine early checkpoints, no duplication counts (like Pythia PR #161)."""
    return build_marts(
        tmp_path_factory.mktemp("marts-single") / "w.duckdb",
        [("pythia-deduped-1b", 1_011_781_632, 1.0, 1.0)],
        [1000 * i for i in range(1, 10)],
        n_scored=51_200,
        with_duplication=False,
    )


@pytest.fixture(scope="session")
def multi_report(multi_db: Path, tmp_path_factory: pytest.TempPathFactory):
    """The report of the several-models warehouse, PNGs included (rendered once)."""
    from memwh.reports import render_report

    return render_report(multi_db, tmp_path_factory.mktemp("report-multi"), png=True)


@pytest.fixture(scope="session")
def single_report(single_db: Path, tmp_path_factory: pytest.TempPathFactory):
    from memwh.reports import render_report

    return render_report(single_db, tmp_path_factory.mktemp("report-single"), png=True)
