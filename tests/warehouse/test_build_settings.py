"""Label vars persist with the build (issue 18): build_settings records them, the report's
captions and footer quote the label actually used, and a plain rebuild that changes them
warns. Counts in the marts are integers, never DECIMAL/HUGEINT that print as 2,120.0."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from wh_fixtures import Built, copy_built

pytestmark = pytest.mark.slow


def _settings(db: Path) -> dict[str, str]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return dict(con.sql("select name, value from build_settings").fetchall())
    finally:
        con.close()


def test_changed_label_follows_into_settings_and_captions_and_plain_build_warns(
    toy_build: Built, tmp_path: Path
) -> None:
    from memwh.reports import render_report
    from memwh.warehouse.build import build

    db, target = copy_built(toy_build, tmp_path)  # its stamp: default-vars unit tests passed
    assert _settings(db)["memorized_min_tokens"] == "32"

    # dbt's unit tests under another label var: test_incremental's relabelled build runs them
    r16 = build(
        db, quiet=True, target_path=target, vars={"memorized_min_tokens": 16}, unit_tests=False
    )
    assert r16.warnings == []  # named on the command line: intended
    s = _settings(db)
    assert s["memorized_min_tokens"] == "16" and s["label_definition"] == "prefix_match"
    rep = render_report(db, tmp_path / "r16", formats=["html", "svg"])
    captions = rep.captions.read_text()
    page = rep.html.read_text()
    assert "matches at least the first 16 of 32 continuation tokens" in captions
    assert "at least the first 16 of 32" in page and "all 32 continuation tokens" not in page
    assert "memorized_min_tokens" in page  # the build settings table

    plain = build(db, quiet=True, target_path=target)
    assert len(plain.warnings) == 1 and "memorized_min_tokens was 16" in plain.warnings[0]
    assert "--vars '{memorized_min_tokens: 16}'" in plain.warnings[0]
    assert _settings(db)["memorized_min_tokens"] == "32"
    again = build(db, quiet=True, target_path=target)
    assert again.warnings == []
    rep = render_report(db, tmp_path / "r32", formats=["svg"])
    assert "reproduces all 32 continuation tokens exactly" in rep.captions.read_text()


def test_cli_build_prints_the_warning(toy_build: Built, tmp_path: Path) -> None:
    from memwh.core.config import dbt_target_dir
    from memwh.warehouse.build import build

    db, target = copy_built(toy_build, tmp_path)
    # the last build's settings are what the warning reads: build_settings alone records them
    build(db, quiet=True, select="build_settings", target_path=target, vars={"score_bins": 16})
    shutil.move(target, dbt_target_dir(db))  # where the CLI keeps dbt's target for this file
    r = subprocess.run(
        [
            sys.executable,
            "-c",
            "from memwh.cli import main; main()",
            "build",
            "--db",
            str(db),
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 0, r.stderr
    assert "warning: score_bins was 16 in the last build" in " ".join(r.stderr.split())


COUNT_COLUMNS = {"n_scored", "n_memorized", "n_common", "n_a", "n_b", "n_both", "n_population",
                 "n_sequences", "n_pearson", "tp", "fp", "fn", "tn", "n_shards"}  # fmt: skip


def test_mart_counts_are_integers(toy_db: Path) -> None:
    con = duckdb.connect(str(toy_db), read_only=True)
    try:
        rows = con.sql(
            "select c.table_name, c.column_name, c.data_type from information_schema.columns c "
            "join information_schema.tables t using (table_schema, table_name) "
            "where c.table_schema = 'main' and t.table_type = 'BASE TABLE' "
            "and not starts_with(c.table_name, 'int_')"
        ).fetchall()
    finally:
        con.close()
    counts = [(t, c, d) for t, c, d in rows if c in COUNT_COLUMNS]
    assert len(counts) >= 15
    bad = [(t, c, d) for t, c, d in counts if d not in ("BIGINT", "INTEGER")]
    assert bad == []
