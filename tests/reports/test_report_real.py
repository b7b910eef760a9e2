"""The report from real warehouses built by `warehouse.build.build` (not fixture marts):
the real Pythia PR #161 data (one model, nine early checkpoints) and the demo suite."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_browser import find_chromium, open_report

from memwh.reports import MAX_REPORT_BYTES, render_report

pytestmark = [pytest.mark.slow, pytest.mark.browser]

REPO = Path(__file__).resolve().parents[2]
PR161 = REPO / "tests" / "fixtures" / "pythia_pr161.parquet"  # all 460,800 real rows


def _chromium() -> str:
    exe = find_chromium()
    if exe is None:
        pytest.fail(
            "chromium is not installed: apt-get install chromium (scripts/ci_system_deps.sh)"
        )
    return exe


def _check_page(html: Path, shot: Path, drawn: list[str]) -> dict:
    page = open_report(html, shot, chromium=_chromium())
    assert page.errors == [], page.errors
    assert page.warnings == [], page.warnings
    assert all(u.startswith(("file:", "data:")) for u in page.requests), page.requests
    assert page.dom["rendered"] == str(len(drawn))
    for c in page.dom["charts"]:
        assert c["state"] == "ok" and c["svg"] and c["marks"] > 0, c
    return page.dom


@pytest.fixture(scope="session")
def pr161_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real PR #161 rows -> raw (ingest's importer) -> marts (the dbt project)."""
    from memwh.ingest.importers import import_pythia_analysis
    from memwh.warehouse.build import build

    if not PR161.is_file():
        pytest.fail(f"{PR161}: the shared PR #161 data file is missing (set MEMWH_PR161_FILE)")
    db = tmp_path_factory.mktemp("pr161") / "memwh.duckdb"
    import_pythia_analysis(PR161, model="pythia-pr161", db=db)
    build(db, unit_tests=False)  # dbt's unit tests: tests/warehouse runs them on this code
    return db


def test_pr161_report(pr161_db: Path, artifacts_dir: Path, tmp_path: Path) -> None:
    r = render_report(pr161_db, tmp_path / "report", png=True)
    assert r.html_bytes < MAX_REPORT_BYTES
    # one model: size comparisons say so, the checkpoint analyses are drawn
    assert {"01_rate_vs_params", "02_precision_recall_vs_params"} <= set(r.notes)
    assert "07_rate_vs_duplication" in r.notes  # the Pile's duplication counts are not in it
    for key in (
        "01b_rate_over_training",
        "03_checkpoint_precision_recall",
        "05_score_distribution",
        "06_agreement_heatmap",
    ):
        assert key in r.charts, (key, r.notes.get(key))
    html = r.html.read_text()
    assert "step1000" in html and "step9000" in html
    dom = _check_page(r.html, artifacts_dir / "report-pr161.png", r.charts)
    assert len(dom["notes"]) >= 3


@pytest.fixture(scope="session")
def demo_warehouse(request: pytest.FixtureRequest) -> Path:
    """The session's demo warehouse (tests/conftest.py)."""
    return request.getfixturevalue("demo_db")


def test_demo_report(demo_warehouse: Path, artifacts_dir: Path, tmp_path: Path) -> None:
    """The demo suite (>= 4 sizes, checkpoints, a corpus with duplicates, a standard and an
    edited model): every chart."""
    r = render_report(demo_warehouse, tmp_path / "report", formats=["html", "png", "svg"])
    assert r.html_bytes < MAX_REPORT_BYTES
    assert r.charts == [
        "01_rate_vs_params",
        "01b_rate_over_training",
        "02_precision_recall_vs_params",
        "03_checkpoint_precision_recall",
        "03b_prediction_grid",
        "04_recall_vs_compute",
        "05_score_distribution",
        "05b_distribution_over_training",
        "06_agreement_heatmap",
        "06b_prefix_match_correlation",
        "07_rate_vs_duplication",
        "07b_insertion_dose_response",
        "07c_mitigation",
        "08_membership_roc",
        "08c_forecast_pr",
        "09_profile_heatmap",
        "09b_profile_lines",
        "09c_memorization_transitions",
    ], r.notes
    # one family, whose standard ladder has one size
    assert set(r.notes) == {"01c_rate_by_family"}
    assert len(r.pngs) == len(r.files["svg"]) == len(r.charts)
    html = r.html.read_text()
    # the footer and captions name the dataset and the label this build used
    assert "corpus_unique.parquet" in html and "all 32 continuation tokens" in html
    assert "2,120.0" not in html
    _check_page(r.html, artifacts_dir / "report-demo.png", r.charts)
