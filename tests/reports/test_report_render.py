"""The report renders from the marts: every chart for a suite, notes for one model, errors
that tell the user what to do, and a size that stays bounded at any scale."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from report_fixtures import PYTHIA, build_marts

from memwh.core.errors import MemwhError
from memwh.reports import MAX_REPORT_BYTES, render_report
from memwh.reports.charts import _spans_decades, model_colors
from memwh.reports.data import MART_COLUMNS, _thin, load_marts

PROFILE_KEYS = ("09_profile_heatmap", "09b_profile_lines", "09c_memorization_transitions")
ALL_CHART_KEYS = [
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
    "08_membership_roc",
    "08c_forecast_pr",
]
# one family (pythia) in the fixture: the standard-vs-deduplicated figure says so
ONE_FAMILY_NOTE = "01c_rate_by_family"


def _specs(html: str) -> dict[str, dict]:
    found = re.findall(
        r'<script type="application/json" id="spec-([^"]+)">(.*?)</script>', html, re.S
    )
    return {key: json.loads(body) for key, body in found}


def _walk(obj):
    if isinstance(obj, dict):
        yield obj
        for v in obj.values():
            yield from _walk(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _walk(v)


def test_every_chart_is_drawn_for_a_suite(multi_report) -> None:
    r = multi_report
    assert r.charts == ALL_CHART_KEYS
    # no controlled experiment and no profile marts in the fixture: those figures say so
    assert set(r.notes) == {
        ONE_FAMILY_NOTE,
        "07b_insertion_dose_response",
        "07c_mitigation",
        *PROFILE_KEYS,
    }
    assert r.html.name == "report.html" and r.html.exists()
    assert 0 < r.html_bytes < MAX_REPORT_BYTES and r.within_budget
    assert [p.name for p in r.pngs] == [f"{k}.png" for k in ALL_CHART_KEYS]
    for p in r.pngs:
        data = p.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, p


def test_report_is_self_contained(multi_report) -> None:
    html = multi_report.html.read_text()
    assert "window.vegaEmbed=" in html  # the library is inlined...
    assert not re.search(r"<script[^>]+src=", html)  # ...and nothing is loaded from elsewhere
    assert not re.search(r"<link[^>]+href=", html)
    specs = _specs(html)
    assert sorted(specs) == sorted(ALL_CHART_KEYS)
    for key, spec in specs.items():
        assert spec["$schema"].startswith("https://vega.github.io/schema/vega-lite/v6"), key


def test_model_colours_are_one_scale_ordered_by_size(multi_report) -> None:
    """Every chart that colours by model uses the same domain (by n_params) and range."""
    by_size = [m for m, *_ in PYTHIA]  # PYTHIA is listed smallest first
    scales = []
    for spec in _specs(multi_report.html.read_text()).values():
        for node in _walk(spec):
            enc = node.get("color") if isinstance(node.get("color"), dict) else None
            if enc and enc.get("field") in {"model", "predictor_model", "target_model"}:
                scales.append((tuple(enc["scale"]["domain"]), tuple(enc["scale"]["range"])))
    assert len(scales) >= 6
    assert {s[0] for s in scales} == {tuple(by_size)}
    assert len({s[1] for s in scales}) == 1
    assert len(set(scales[0][1])) == len(by_size)


def test_charts_use_log_scales_where_the_paper_does(multi_report) -> None:
    specs = _specs(multi_report.html.read_text())

    def scale_of(key: str, field: str) -> list[str]:
        return [
            n.get("scale", {}).get("type")
            for n in _walk(specs[key])
            if n.get("field") == field and "scale" in n
        ]

    assert "log" in scale_of("01_rate_vs_params", "n_params")
    assert "log" in scale_of("02_precision_recall_vs_params", "predictor_params")
    assert "log" in scale_of("04_recall_vs_compute", "compute_fraction")
    assert "log" in scale_of("05_score_distribution", "fraction")
    assert "log" in scale_of("07_rate_vs_duplication", "duplicates")


def test_tables_carry_the_numbers(multi_report) -> None:
    html = multi_report.html.read_text()
    # Table 2 analogue: the largest model's checkpoints, precision with a Wilson interval.
    assert re.search(r"<td>pythia-12b</td><td>step23000</td>", html)
    assert re.search(r"0\.9\d\d \[0\.9\d\d, 0\.9\d\d\]", html)
    # unit table: one row per unit with provenance
    assert html.count("<td>float16</td>") == 56
    assert "2024-05-01" in html


def test_one_model_says_so_in_place(single_report) -> None:
    r = single_report
    assert set(r.notes) == {
        "01_rate_vs_params",
        ONE_FAMILY_NOTE,
        "02_precision_recall_vs_params",
        "07_rate_vs_duplication",
        "07b_insertion_dose_response",
        "07c_mitigation",
        *PROFILE_KEYS,
    }
    assert "two model sizes" in r.notes["01_rate_vs_params"]
    assert "duplicates" in r.notes["07_rate_vs_duplication"]
    # what one model can show is drawn: over training, checkpoints->final, compute, tails
    assert r.charts == [
        "01b_rate_over_training",
        "03_checkpoint_precision_recall",
        "03b_prediction_grid",
        "04_recall_vs_compute",
        "05_score_distribution",
        "05b_distribution_over_training",
        "06_agreement_heatmap",
        "06b_prefix_match_correlation",
        "08_membership_roc",
        "08c_forecast_pr",
    ]
    html = r.html.read_text()
    for key in r.notes:
        assert f'data-note="{key}"' in html
        assert f'id="chart-{key}"' not in html


def test_stale_pngs_are_removed(single_db: Path, tmp_path: Path) -> None:
    stale = tmp_path / "charts" / "02_precision_recall_vs_params.png"
    stale.parent.mkdir()
    stale.write_bytes(b"old")
    render_report(single_db, tmp_path, png=True)
    assert not stale.exists()


def test_no_png_writes_only_html(multi_db: Path, tmp_path: Path) -> None:
    r = render_report(multi_db, tmp_path / "out", png=False)
    assert r.pngs == [] and not (tmp_path / "out" / "charts").exists()
    assert r.html.exists()


def test_missing_mart_says_run_build(tmp_path: Path) -> None:
    db = tmp_path / "raw-only.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE SCHEMA raw; CREATE TABLE raw.scores (x INT)")
    con.execute("CREATE TABLE units (model VARCHAR)")
    con.close()
    with pytest.raises(MemwhError, match=r"memorization_rates.*run `memwh build` first"):
        render_report(db, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_mart_without_contract_column_is_named(tmp_path: Path, multi_db: Path) -> None:
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute(f"ATTACH '{multi_db}' AS src (READ_ONLY)")
    for table in MART_COLUMNS:
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM src.{table}")
    con.execute("ALTER TABLE prediction_precision_recall DROP COLUMN recall_lo")
    con.close()
    with pytest.raises(MemwhError, match=r"prediction_precision_recall has no column recall_lo"):
        load_marts(db)


def test_missing_database_and_empty_marts(tmp_path: Path, multi_db: Path) -> None:
    with pytest.raises(MemwhError, match="memwh build"):
        render_report(tmp_path / "nope.duckdb", tmp_path / "out")
    db = tmp_path / "empty.duckdb"
    con = duckdb.connect(str(db))
    con.execute(f"ATTACH '{multi_db}' AS src (READ_ONLY)")
    for table in MART_COLUMNS:
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM src.{table} LIMIT 0")
    con.close()
    with pytest.raises(MemwhError, match="memorization_rates is empty"):
        render_report(db, tmp_path / "out")


def test_report_leaves_the_database_unlocked(multi_db: Path, tmp_path: Path) -> None:
    """dbt needs the file to itself: the report must not keep a connection open."""
    render_report(multi_db, tmp_path / "out", png=False)
    con = duckdb.connect(str(multi_db))  # a writer would fail on a lock
    con.close()


@pytest.mark.slow
def test_size_stays_bounded_at_scale(tmp_path_factory: pytest.TempPathFactory) -> None:
    """40 models x 60 checkpoints (2,400 units, 2.9M agreement pairs): still < 5 MB."""
    models = [(f"m{i:02d}", int(1e7 * 1.25**i), 0.9, min(0.95, 0.1 + i / 50)) for i in range(40)]
    steps = [1000 * (i + 1) for i in range(60)]
    db = build_marts(tmp_path_factory.mktemp("big") / "w.duckdb", models, steps, n_scored=10**7)
    r = render_report(db, tmp_path_factory.mktemp("big-report"), png=False)
    assert r.html_bytes < MAX_REPORT_BYTES, r.html_bytes
    assert r.within_budget
    assert r.notes["10_units"] == "Showing 400 of 2400 units."
    assert "24 of 40 units" in r.notes["06_agreement_heatmap"]
    assert "12 of 40 models" in r.notes["03_checkpoint_precision_recall"]
    html = r.html.read_text()
    # (1.5 MB before the three membership figures, which embed at most ~200 points per curve)
    assert sum(len(json.dumps(s)) for s in _specs(html).values()) < 1_600_000


def test_cli_report(multi_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from memwh.cli import app

    runner = CliRunner()
    ok = runner.invoke(
        app, ["report", "--db", str(multi_db), "--out", str(tmp_path / "r"), "--no-png"]
    )
    assert ok.exit_code == 0, ok.output
    assert "report:" in ok.output and (tmp_path / "r" / "report.html").exists()
    # default output folder: <data dir>/report; default database: MEMWH_DB
    monkeypatch.setenv("MEMWH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MEMWH_DB", str(multi_db))
    ok = runner.invoke(app, ["report", "--no-png"])
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "home" / "report" / "report.html").exists()


def test_cli_error_is_one_line(tmp_path: Path) -> None:
    run = [sys.executable, "-c", "from memwh.cli import main; main()", "report"]
    bad = subprocess.run(
        [*run, "--db", str(tmp_path / "missing.duckdb")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2
    assert "memwh build" in bad.stderr and "Traceback" not in bad.stderr


def test_helpers() -> None:
    cols = model_colors(8)
    assert len(set(cols)) == 8 and cols[0] == "#440154"
    assert model_colors(1) == ["#440154"]
    assert _spans_decades([0.001, 0.02]) and not _spans_decades([0.0, 0.5])
    assert not _spans_decades([0.3, 0.9]) and not _spans_decades([None, 1.0, 100.0])
    assert _thin(list(range(100)), 5) == [0, 25, 50, 74, 99]
    assert _thin([1, 2], 5) == [1, 2]
