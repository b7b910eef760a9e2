"""memwh import exposure / exposure-rule: what each model trained on, per model and dataset."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ingest_helpers import count, snapshot, write_shard

from memwh.core.errors import MemwhError
from memwh.ingest import (
    declare_exposure_rule,
    import_exposure,
    import_pythia_analysis,
    ingest_root,
)

HERE = Path(__file__).resolve().parent
SAMPLE = HERE / "fixtures" / "pythia_pr161_sample.parquet"
REPO = HERE.parents[1]
DATASET = "corpus-abc123"  # the data_fingerprint ingest_helpers.write_shard writes


def rows(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def good_csv(path: Path) -> Path:
    path.write_text(
        "seq_idx,first_step,n_exposures,last_step\n0,0,1,0\n1,3,2,7\n2,,,\n3,NULL,,\n4,9,1,9\n"
    )
    return path


def test_csv_and_parquet_with_and_without_optional_columns(tmp_path: Path, db: Path) -> None:
    res = import_exposure(good_csv(tmp_path / "e.csv"), model="m", dataset=DATASET, db=db)
    assert (res.n_rows, res.n_trained, res.kind, res.dataset) == (5, 3, "table", DATASET)
    assert rows(
        db, "SELECT seq_idx, first_step, n_exposures, last_step FROM raw.exposure ORDER BY 1"
    ) == [
        (0, 0, 1, 0),
        (1, 3, 2, 7),
        (2, None, None, None),
        (3, None, None, None),
        (4, 9, 1, 9),
    ]
    # Parquet with only the required columns replaces it; pandas-style float with NaN = missing
    t = pa.table({"seq_idx": [5, 6], "first_step": pa.array([2.0, float("nan")], pa.float64())})
    pq.write_table(t, tmp_path / "e.parquet")
    res = import_exposure(tmp_path / "e.parquet", model="m", dataset=DATASET, db=db)
    assert res.replaced == "table" and res.notes
    assert rows(db, "SELECT seq_idx, first_step, n_exposures FROM raw.exposure ORDER BY 1") == [
        (5, 2, None),
        (6, None, None),
    ]
    assert count(db, "SELECT count(*) FROM raw.exposure_sets") == 1


def test_reimport_of_the_same_file_is_skipped(tmp_path: Path, db: Path) -> None:
    f = good_csv(tmp_path / "e.csv")
    import_exposure(f, model="m", dataset=DATASET, db=db)
    before = rows(db, "SELECT exposure_id FROM raw.exposure_sets")
    assert import_exposure(f, model="m", dataset=DATASET, db=db).unchanged
    assert rows(db, "SELECT exposure_id FROM raw.exposure_sets") == before


BAD_CSV = {
    "duplicate": ("seq_idx,first_step\n1,2\n1,3\n", "duplicate seq_idx"),
    "negative step": ("seq_idx,first_step\n1,-2\n", "negative first_step"),
    "negative last": ("seq_idx,first_step,last_step\n1,2,-1\n", "negative"),
    "negative idx": ("seq_idx,first_step\n-1,2\n", "negative seq_idx"),
    "text step": ("seq_idx,first_step\n1,two\n", "not integers (e.g. 'two')"),
    "float step": ("seq_idx,first_step\n1,2.5\n", "not integers"),
    "missing column": ("seq_idx,step\n1,2\n", "missing column(s) first_step"),
    "empty": ("seq_idx,first_step\n", "holds no rows"),
    "last before first": ("seq_idx,first_step,last_step\n1,5,3\n", "last_step < first_step"),
    "never but exposed": ("seq_idx,first_step,n_exposures\n1,,2\n", "never trained"),
    "zero exposures": ("seq_idx,first_step,n_exposures\n1,4,0\n", "n_exposures = 0"),
    "one exposure two steps": (
        "seq_idx,first_step,n_exposures,last_step\n1,4,1,6\n",
        "n_exposures = 1",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CSV))
def test_bad_csv_is_refused_and_changes_nothing(tmp_path: Path, db: Path, case: str) -> None:
    import_exposure(good_csv(tmp_path / "ok.csv"), model="m", dataset=DATASET, db=db)
    before = snapshot(db)
    text, needle = BAD_CSV[case]
    bad = tmp_path / "bad.csv"
    bad.write_text(text)
    with pytest.raises(MemwhError) as e:
        import_exposure(bad, model="m", dataset=DATASET, db=db)
    msg = str(e.value)
    assert needle in msg and str(bad) in msg and "\n" not in msg
    assert snapshot(db) == before


@pytest.mark.parametrize(
    ("table", "needle"),
    [
        (pa.table({"seq_idx": ["a"], "first_step": [1]}), "column seq_idx has type string"),
        (pa.table({"seq_idx": [1], "first_step": ["x"]}), "column first_step has type string"),
        (pa.table({"seq_idx": [1], "first_step": [1.5]}), "non-integer"),
        (pa.table({"seq_idx": [1, 1], "first_step": [1, 2]}), "duplicate seq_idx"),
        (pa.table({"seq_idx": [1]}), "missing column(s) first_step"),
    ],
)
def test_bad_parquet_is_refused(tmp_path: Path, db: Path, table: pa.Table, needle: str) -> None:
    declare_exposure_rule(model="m", dataset=DATASET, db=db)
    before = snapshot(db)
    pq.write_table(table, tmp_path / "bad.parquet")
    with pytest.raises(MemwhError) as e:
        import_exposure(tmp_path / "bad.parquet", model="m", dataset=DATASET, db=db)
    assert needle in str(e.value)
    assert snapshot(db) == before


def test_dataset_is_inferred_from_the_models_units_and_required_before_them(
    root: Path, tmp_path: Path, db: Path
) -> None:
    f = good_csv(tmp_path / "e.csv")
    with pytest.raises(MemwhError, match="pass --dataset"):
        import_exposure(f, model="demo-1m", db=db)
    # before the scores, with the dataset named: fine
    res = import_exposure(f, model="demo-1m", dataset=DATASET, db=db)
    assert any("no scores of demo-1m yet" in n for n in res.notes)
    ingest_root(root, db, progress=False)
    # after the scores: the one dataset of the model's units is the default
    f.write_text("seq_idx,first_step\n0,1\n")
    assert import_exposure(f, model="demo-1m", db=db).dataset == DATASET
    # a second dataset makes the default ambiguous
    write_shard(root, revision="step200", manifest_overrides={"data_fingerprint": "other-data"})
    write_shard(
        root, revision="step200", shard=1, manifest_overrides={"data_fingerprint": "other-data"}
    )
    ingest_root(root, db, progress=False)
    with pytest.raises(MemwhError, match="several datasets"):
        import_exposure(f, model="demo-1m", db=db)


def test_rule_declaration_and_pythia_analysis_default(tmp_path: Path, db: Path) -> None:
    res = declare_exposure_rule(
        model="m", dataset="d", sequences_per_step=512, train_steps=10, db=db
    )
    assert res.kind == "rule"
    assert rows(
        db, "SELECT kind, sequences_per_step, train_steps, n_rows FROM raw.exposure_sets"
    ) == [("rule", 512, 10, 0)]
    with pytest.raises(MemwhError, match="sequences-per-step"):
        declare_exposure_rule(model="m", dataset="d", sequences_per_step=0, db=db)
    # the PR #161 import declares Pythia's rule for its dataset, but never over an explicit table
    import_pythia_analysis(SAMPLE, model="pr", db=db)
    assert rows(
        db,
        "SELECT dataset, kind, sequences_per_step, train_steps, source FROM raw.exposure_sets "
        "WHERE model = 'pr'",
    ) == [("pythia-pile-preshuffled", "rule", 1024, 143_000, "pythia-analysis")]
    assert rows(db, "SELECT DISTINCT data_fingerprint FROM raw.runs WHERE model = 'pr'") == [
        ("pythia-pile-preshuffled",)
    ]
    import_exposure(good_csv(tmp_path / "e.csv"), model="pr", db=db)
    import_pythia_analysis(SAMPLE, model="pr", db=db)
    assert rows(db, "SELECT kind FROM raw.exposure_sets WHERE model = 'pr'") == [("table",)]


def test_cli_bad_file_exits_2_with_one_line(tmp_path: Path, db: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("seq_idx,first_step\n1,2\n1,3\n")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "memwh",
            "import",
            "exposure",
            str(bad),
            "--model",
            "m",
            "--dataset",
            "d",
            "--db",
            str(db),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "duplicate seq_idx" in lines[0]
    ok = good_csv(tmp_path / "ok.csv")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "memwh",
            "import",
            "exposure",
            str(ok),
            "--model",
            "m",
            "--dataset",
            "d",
            "--db",
            str(db),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "5 rows (3 trained, 2 never trained)" in r.stderr
