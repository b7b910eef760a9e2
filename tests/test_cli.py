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


def test_flags_are_plain_with_negatives_and_help_shows_no_bool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # long option names are not cut at 80 columns
    r = memwh("infer", "--help")
    assert r.returncode == 0
    assert "<bool>" not in r.stdout
    for neg in ("--no-suppress-eos", "--no-force", "--no-save-generations", "--no-save-windows"):
        assert neg in r.stdout
    for cmd in ("ingest", "build", "report", "show", "sql"):
        h = memwh(cmd, "-h")
        assert h.returncode == 0 and "<bool>" not in h.stdout, cmd
    assert "--no-strict" in memwh("ingest", "-h").stdout


def test_version_and_short_help() -> None:
    import memwh as pkg

    v = memwh("--version")
    assert v.returncode == 0 and v.stdout.strip() == f"memwh {pkg.__version__}"
    h = memwh("-h")
    assert h.returncode == 0 and "Commands" in h.stdout and "show" in h.stdout


def test_sql_exports_every_column_type(tmp_path: Path) -> None:
    """CSV has no nested values: lists/structs become JSON text; JSON and table work too."""
    import json

    db = tmp_path / "w.duckdb"
    duckdb.connect(str(db)).close()
    q = (
        "SELECT [1, 2] AS l, {'a': 1, 'b': 'x'} AS s, [[1], [2, 3]] AS ll, 'ab'::BLOB AS b, "
        "INTERVAL 3 SECOND AS d, 1.50::DECIMAL(10, 2) AS dec, 170141183460469231731687303715884105727::HUGEINT AS h, "
        "TIME '01:02:03' AS t, DATE '2020-01-02' AS dt, NULL AS n, map([1], ['z']) AS m, "
        "[1.0, 2.0]::DOUBLE[2] AS arr, 'x'::UUID::VARCHAR AS u"
    ).replace("'x'::UUID::VARCHAR", "gen_random_uuid()")
    for fmt in ("csv", "json", "table"):
        r = memwh("sql", "--db", str(db), "-f", fmt, q)
        assert r.returncode == 0, (fmt, r.stderr)
        assert "Traceback" not in r.stderr
    out = memwh("sql", "--db", str(db), "-f", "csv", q).stdout
    import csv as csv_mod
    import io

    row = next(csv_mod.DictReader(io.StringIO(out)))
    assert json.loads(row["l"]) == [1, 2] and json.loads(row["ll"]) == [[1], [2, 3]]
    assert json.loads(row["s"]) == {"a": 1, "b": "x"} and json.loads(row["arr"]) == [1.0, 2.0]
    assert row["dec"] == "1.50" and row["n"] == ""
    pq_out = tmp_path / "x.parquet"
    assert memwh("sql", "--db", str(db), "-f", "parquet", "-o", str(pq_out), q).returncode == 0
