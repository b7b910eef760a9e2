"""Running a stage before its input exists gives one line naming the command to run first."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest


def memwh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from memwh.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _one_line_error(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


def test_every_stage_has_a_command() -> None:
    r = memwh("--help")
    assert r.returncode == 0
    for cmd in (
        "suite",
        "infer",
        "submit",
        "status",
        "ingest",
        "import",
        "build",
        "report",
        "sql",
        "tables",
        "demo",
    ):
        assert cmd in r.stdout


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (("build",), "memwh ingest"),
        (("report", "--out", "{tmp}/r"), "memwh build"),
        (("sql", "select 1"), "memwh"),
        (("tables",), "memwh"),
    ],
)
def test_stage_before_its_input_hints_the_previous_command(tmp_path: Path, args, hint) -> None:
    db = tmp_path / "missing.duckdb"
    line = _one_line_error(memwh(*[a.format(tmp=tmp_path) for a in args], "--db", str(db)))
    assert hint in line and str(db) in line
    assert not db.exists(), "a read or a failed stage must not create the database file"


def test_report_on_unbuilt_warehouse_names_build(tmp_path: Path) -> None:
    db = tmp_path / "empty.duckdb"
    duckdb.connect(str(db)).close()
    line = _one_line_error(memwh("report", "--db", str(db), "--out", str(tmp_path / "r")))
    assert "memwh build" in line


def test_sql_is_read_only(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE t AS SELECT 1 AS a")
    con.close()
    line = _one_line_error(memwh("sql", "INSERT INTO t VALUES (2)", "--db", str(db)))
    assert "read-only" in line
    assert duckdb.connect(str(db), read_only=True).sql("SELECT count(*) FROM t").fetchall() == [
        (1,)
    ]


def test_sql_formats(tmp_path: Path) -> None:
    db = tmp_path / "w.duckdb"
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE t AS SELECT range AS a FROM range(3)")
    con.close()
    r = memwh("sql", "SELECT a FROM t ORDER BY a", "--db", str(db), "--format", "csv")
    assert r.returncode == 0 and r.stdout.split() == ["a", "0", "1", "2"]
    out = tmp_path / "o.parquet"
    r = memwh("sql", "SELECT a FROM t", "--db", str(db), "--format", "parquet", "--out", str(out))
    assert r.returncode == 0 and duckdb.sql(f"SELECT sum(a) FROM '{out}'").fetchall() == [(3,)]
