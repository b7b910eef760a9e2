"""Acceptance: the report opens in headless Chromium from file:// with the network off, logs
no console error, and every chart draws a non-empty SVG. Screenshots are kept in
test-artifacts/ for a human to look at."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from report_browser import PageReport, find_chromium, open_report

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _chromium() -> str:
    exe = find_chromium()
    if exe is None:  # CI installs it (scripts/ci_system_deps.sh): missing means broken CI
        pytest.fail(
            "chromium is not installed: apt-get install chromium (scripts/ci_system_deps.sh)"
        )
    return exe


def _assert_renders(page: PageReport, drawn: list[str]) -> None:
    assert page.errors == [], page.errors
    assert page.warnings == [], page.warnings  # Vega warns on broken encodings/scales
    # offline: the page and its inlined libraries load nothing but the file itself
    assert page.requests and all(u.startswith(("file:", "data:")) for u in page.requests), (
        page.requests
    )
    assert page.failed_requests == []
    dom = page.dom
    assert dom["rendered"] == str(len(drawn)), dom
    assert [c["id"] for c in dom["charts"]] == [f"chart-{k}" for k in drawn]
    for c in dom["charts"]:
        assert c["state"] == "ok", c
        assert c["svg"], c
        assert c["width"] > 200 and c["height"] > 150, c
        assert c["marks"] > 0, c  # data marks drawn, not just axes


def test_report_in_headless_chromium(multi_report, artifacts_dir: Path) -> None:
    exe = _chromium()
    shot = artifacts_dir / "report.png"
    page = open_report(multi_report.html, shot, chromium=exe)
    _assert_renders(page, multi_report.charts)
    # notes: one model family (no standard-vs-deduplicated comparison), no controlled
    # experiment in the fixture (dose-response, mitigation), no profile marts (3 figures)
    assert len(page.dom["notes"]) == 6
    assert any("two model families" in n for n in page.dom["notes"])
    # Table 2 analogue + membership AUC + unit summary + build settings
    assert page.dom["tables"] == 4
    assert shot.exists() and shot.read_bytes()[:4] == b"\x89PNG"
    assert shot.stat().st_size > 50_000
    shutil.copy(multi_report.html, artifacts_dir / "report.html")
    print(f"chromium: {page.seconds:.1f}s, screenshot {shot}")


def test_one_model_report_in_headless_chromium(single_report, artifacts_dir: Path) -> None:
    exe = _chromium()
    shot = artifacts_dir / "report-one-model.png"
    page = open_report(single_report.html, shot, chromium=exe)
    _assert_renders(page, single_report.charts)
    notes = page.dom["notes"]
    # + the two controlled-experiment and three profile figures, which this warehouse has no
    # data for
    assert len(notes) == 9 and any("two model sizes" in n for n in notes)
    assert shot.exists()


def test_a_broken_chart_is_caught(multi_report, tmp_path: Path) -> None:
    """The check can fail: a spec Vega cannot parse shows as an error, in the console too."""
    html = multi_report.html.read_text()
    marker = '<script type="application/json" id="spec-06_agreement_heatmap">'
    start = html.index(marker) + len(marker)
    end = html.index("</script>", start)
    broken = html[:start] + '{"mark": {"type": "nonsense"}, "data": {"values": []}}' + html[end:]
    path = tmp_path / "broken.html"
    path.write_text(broken)
    page = open_report(path, chromium=_chromium())
    states = {c["id"]: c["state"] for c in page.dom["charts"]}
    assert states["chart-06_agreement_heatmap"] == "error"
    assert any("06_agreement_heatmap" in e for e in page.errors), page.console
