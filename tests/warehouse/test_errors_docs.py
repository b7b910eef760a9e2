"""Readable errors (nothing ingested, locked DB), the CLI, and dbt docs with full descriptions."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from memwh.core.errors import MemwhError
from memwh.ingest.schema import ensure_raw_schema


def test_missing_and_empty_raw_layer(tmp_path: Path):
    from memwh.warehouse.build import build

    with pytest.raises(MemwhError, match="no scores ingested yet: run `memwh ingest ROOT` first"):
        build(tmp_path / "nothing.duckdb")
    db = tmp_path / "empty.duckdb"
    con = duckdb.connect(str(db))
    ensure_raw_schema(con)
    con.close()
    with pytest.raises(MemwhError, match="no scores ingested yet"):
        build(db)


def test_cli_build_error_is_one_line(tmp_path: Path):
    p = subprocess.run(
        [
            sys.executable,
            "-c",
            "from memwh.cli import main; main()",
            "build",
            "--db",
            str(tmp_path / "none.duckdb"),
        ],
        capture_output=True,
        cwd=tmp_path,  # outside the repo: `warehouse` must still resolve to the package
        text=True,
        timeout=120,
    )
    assert p.returncode == 2
    assert "no scores ingested yet" in p.stderr and "Traceback" not in p.stderr


@pytest.mark.parametrize("read_only", [False, True], ids=["writer", "read-only notebook"])
def test_locked_database(tmp_path: Path, toy_db: Path, capfd, read_only: bool):
    from memwh.warehouse.build import build

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(toy_db)!r}, read_only={read_only}); "
            "print('ok', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ok"
        capfd.readouterr()
        with pytest.raises(MemwhError, match="locked by another process"):
            build(toy_db, target_path=tmp_path / "t")
        out = capfd.readouterr()
        assert len((out.out + out.err).splitlines()) <= 2, "dbt must not log the lock per node"
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.2)


@pytest.mark.slow
def test_docs_generate_describes_every_mart_column(tmp_path: Path, toy_db: Path):
    from memwh.warehouse.build import docs

    page = docs(toy_db, target_path=tmp_path / "t")
    assert page.exists() and page.stat().st_size > 10_000
    manifest = json.loads((tmp_path / "t" / "manifest.json").read_text())
    con = duckdb.connect(str(toy_db), read_only=True)
    marts = [
        "units",
        "memorization_rates",
        "cross_scale_agreement",
        "prediction_precision_recall",
        "scaling_curves",
        "score_distribution",
        "memorization_by_duplication",
    ]
    for name in marts:
        node = manifest["nodes"][f"model.memwh.{name}"]
        assert node["description"].strip(), name
        cols = [
            r[0]
            for r in con.sql(
                f"select column_name from information_schema.columns where table_schema = 'main' "
                f"and table_name = '{name}'"
            ).fetchall()
        ]
        missing = [c for c in cols if not node["columns"].get(c, {}).get("description")]
        assert not missing, (name, missing)
    con.close()
