"""memwh ingest: validated, idempotent, incremental, transactional loading of score shards."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from ingest_helpers import count, score_table, snapshot, write_shard

import memwh.ingest.loader as loader
from memwh.core import contract
from memwh.core.errors import MemwhError
from memwh.ingest import IngestError, ingest_root

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    code = "from memwh.cli import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def load(root: Path, db: Path, **kw) -> loader.IngestReport:
    return ingest_root(root, db, progress=False, **kw)


# --------------------------------------------------------------------------- happy path


def test_loads_all_rows_with_provenance(root: Path, db: Path) -> None:
    rep = load(root, db)
    assert rep.ok and rep.files_loaded == 2 and rep.rows == 1000
    assert count(db, "SELECT count(*) FROM raw.scores") == 1000
    assert count(db, "SELECT count(DISTINCT seq_idx) FROM raw.scores") == 1000
    # The view exposes the columns the warehouse reads, with model/revision/run_id per row.
    con = duckdb.connect(str(db), read_only=True)
    cols = [d[0] for d in con.execute("SELECT * FROM raw.scores LIMIT 0").description]
    runs = con.execute(
        "SELECT source, model, revision, step, family, shard, num_shards, seq_start, seq_end, n_rows, "
        "population, rows_are_sparse, host, versions->>'torch', started_at IS NOT NULL "
        "FROM raw.runs ORDER BY shard"
    ).fetchall()
    con.close()
    assert cols == [
        "model",
        "revision",
        "seq_idx",
        "prompt_len",
        "is_run_prompt_len",
        "prefix_match_len",
        "exact_match",
        "memorization_score",
        "tf_token_accuracy",
        "loss",
        "min_k_logprob",
        "zlib_ratio",
        "label_margin",
        "label_certain",
        "label_verified",
        "run_id",
        "data_fingerprint",
    ]
    assert runs == [
        (
            "memwh",
            "demo-1m",
            "step100",
            100,
            "demo",
            0,
            2,
            0,
            500,
            500,
            500,
            False,
            "node01",
            "2.13.0",
            True,
        ),
        (
            "memwh",
            "demo-1m",
            "step100",
            100,
            "demo",
            1,
            2,
            500,
            1000,
            500,
            500,
            False,
            "node01",
            "2.13.0",
            True,
        ),
    ]
    # Values survive the trip: compare one shard with the file.
    pq_path, _ = contract.shard_paths(root, "demo-1m", "step100", 1, 2)
    want = pq.read_table(pq_path).sort_by("seq_idx")
    con = duckdb.connect(str(db), read_only=True)
    got = con.sql(
        "SELECT seq_idx, prefix_match_len, exact_match, memorization_score, tf_token_accuracy, loss, "
        "min_k_logprob, zlib_ratio, prompt_len FROM raw.scores WHERE seq_idx >= 500 ORDER BY seq_idx"
    ).to_arrow_table()
    con.close()
    # the label certainty columns (contract v3) are not loaded into the warehouse (yet)
    v2 = contract.SCORE_SCHEMA_V2
    assert got.cast(v2).equals(want.select(v2.names).cast(v2))


def test_same_root_twice_adds_nothing(root: Path, db: Path) -> None:
    load(root, db)
    before = snapshot(db)
    rep = load(root, db)
    assert rep.files_loaded == 0 and rep.files_unchanged == 2 and rep.rows == 0
    assert snapshot(db) == before


def test_force_rerun_replaces_the_shard_in_one_go(root: Path, db: Path) -> None:
    load(root, db)
    old_run = count(db, "SELECT run_id FROM raw.runs WHERE shard = 1")
    pq_path, _ = write_shard(root, shard=1, seed=7)  # a --force rerun: new bytes, new run_id
    rep = load(root, db)
    assert rep.files_loaded == 1 and rep.files_replaced == 1 and rep.rows_deleted == 500
    assert count(db, "SELECT count(*) FROM raw.scores") == 1000
    assert count(db, f"SELECT count(*) FROM raw.runs WHERE run_id = '{old_run}'") == 0
    assert count(db, f"SELECT count(*) FROM raw.scores WHERE run_id = '{old_run}'") == 0
    new = pq.read_table(pq_path)
    assert count(
        db, "SELECT sum(loss::DOUBLE) FROM raw.scores WHERE seq_idx >= 500"
    ) == pytest.approx(pc.sum(new["loss"].cast(pa.float64())).as_py(), rel=1e-6)


def test_incremental_reads_only_new_files(root: Path, db: Path, monkeypatch) -> None:
    load(root, db)
    write_shard(root, revision="step200", shard=0, num_shards=1)
    checked: list[Path] = []
    real = loader.check_parquet
    monkeypatch.setattr(
        loader, "check_parquet", lambda s: (checked.append(s.parquet_path), real(s))
    )
    rep = load(root, db)
    assert [p.parent.name for p in checked] == ["revision=step200"]
    assert rep.files_loaded == 1 and rep.files_unchanged == 2
    assert count(db, "SELECT count(*) FROM raw.scores") == 2000


def test_touched_file_is_not_reloaded_but_changed_bytes_are_bad(root: Path, db: Path) -> None:
    load(root, db)
    pq0, _ = contract.shard_paths(root, "demo-1m", "step100", 0, 2)
    os.utime(pq0, (time.time() + 5, time.time() + 5))
    before = snapshot(db)
    rep = load(root, db)
    assert rep.ok and rep.files_unchanged == 2 and rep.rows == 0
    assert snapshot(db)["score_rows"] == before["score_rows"]
    # Same manifest (run_id) but other bytes: the file changed behind its manifest.
    contract.write_scores_parquet(score_table(0, 500, seed=99), pq0)
    before = snapshot(db)
    rep = load(root, db)
    assert [p.problem for p in rep.bad] == [
        "the file changed after it was ingested but its manifest (run_id) did not"
    ]
    assert snapshot(db) == before


def test_sequences_metadata_loaded_once(root: Path, db: Path) -> None:
    meta = contract.sequence_meta_table(
        {
            "duplicates": pa.array(np.arange(1000) % 7, pa.int32()),
            "is_canary": pa.array(np.arange(1000) % 100 == 0),
        },
        pa.array(np.arange(1000), pa.int64()),
    )
    path = contract.sequences_meta_path(root, "corpus-abc123")
    path.parent.mkdir(parents=True)
    pq.write_table(meta, path)
    rep = load(root, db)
    assert rep.sequence_files == 1 and rep.sequence_rows == 1000
    assert (
        count(db, "SELECT count(*) FROM raw.sequences WHERE data_fingerprint = 'corpus-abc123'")
        == 1000
    )
    assert count(db, "SELECT sum(duplicates) FROM raw.sequences") == int(
        (np.arange(1000) % 7).sum()
    )
    assert load(root, db).sequence_files == 0
    assert count(db, "SELECT count(*) FROM raw.sequences") == 1000


def test_prune_drops_rows_of_deleted_shards(root: Path, db: Path) -> None:
    load(root, db)
    pq1, man1 = contract.shard_paths(root, "demo-1m", "step100", 1, 2)
    pq1.unlink()
    man1.unlink()
    rep = load(root, db)
    assert [p.kind for p in rep.problems] == ["gone"]
    assert count(db, "SELECT count(*) FROM raw.scores") == 1000
    rep = load(root, db, prune=True)
    assert rep.runs_pruned == 1 and rep.rows_deleted == 500
    assert count(db, "SELECT count(*) FROM raw.scores") == 500
    assert count(db, "SELECT count(*) FROM raw.runs") == 1


# --------------------------------------------------------------------------- bad inputs
# Each: a loaded database, then one bad shard in a new unit; the bad file is reported
# (one line: file, problem, what to do) and the database is exactly as before.


@pytest.fixture
def loaded(root: Path, db: Path) -> dict:
    load(root, db)
    return snapshot(db)


def _only_bad(rep, path_part: str) -> str:
    assert len(rep.bad) == 1, [p.line() for p in rep.problems]
    line = rep.bad[0].line()
    assert path_part in line
    return line


def test_truncated_parquet(root: Path, db: Path, loaded: dict) -> None:
    pq_path, _ = write_shard(root, revision="step200", num_shards=1)
    data = pq_path.read_bytes()
    pq_path.write_bytes(data[: len(data) // 2])
    rep = load(root, db)
    line = _only_bad(rep, "revision=step200/part-00000-of-00001.parquet")
    assert "sha256" in line and "truncated" in line and "rerun the shard with --force" in line
    assert snapshot(db) == loaded
    # Without checksums the footer check still catches it.
    rep = load(root, db, verify_checksums=False)
    assert "unreadable Parquet" in _only_bad(rep, "step200")
    assert snapshot(db) == loaded


def _write_raw(root: Path, table: pa.Table, revision: str = "step200", **overrides) -> Path:
    """A shard whose Parquet bypasses the contract writer's column check."""
    pq_path, man_path = contract.shard_paths(root, "demo-1m", revision, 0, 1)
    pq_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, pq_path)
    _, good_man = write_shard(root, revision=revision + "-tmp", num_shards=1, total=table.num_rows)
    manifest = json.loads(good_man.read_text())
    shutil.rmtree(good_man.parent)
    manifest.update(
        revision=revision,
        parquet_file=pq_path.name,
        parquet_sha256=contract.sha256_file(pq_path),
        n_rows=table.num_rows,
        n_exact=None,
        **overrides,
    )
    contract.write_manifest(man_path, manifest)
    return pq_path


def test_wrong_column_type(root: Path, db: Path, loaded: dict) -> None:
    t = score_table(0, 1000)
    t = t.set_column(t.schema.get_field_index("loss"), "loss", pc.cast(t["loss"], pa.string()))
    _write_raw(root, t)
    line = _only_bad(load(root, db), "step200")
    assert "column loss has type string, the contract needs float" in line
    assert snapshot(db) == loaded


def test_missing_column(root: Path, db: Path, loaded: dict) -> None:
    _write_raw(root, score_table(0, 1000).drop_columns(["zlib_ratio"]))
    line = _only_bad(load(root, db), "step200")
    assert "missing column(s) zlib_ratio" in line
    assert snapshot(db) == loaded


def test_narrower_integer_type_is_accepted(root: Path, db: Path, loaded: dict) -> None:
    t = score_table(0, 1000)
    t = t.set_column(0, "seq_idx", pc.cast(t["seq_idx"], pa.int32()))
    _write_raw(root, t)
    rep = load(root, db)
    assert rep.ok and rep.rows == 1000


def test_missing_manifest_is_incomplete(root: Path, db: Path, loaded: dict) -> None:
    write_shard(root, revision="step200", num_shards=1, write_manifest=False)
    rep = load(root, db)
    assert rep.ok and not rep.bad  # a running job is not an error ...
    assert len(rep.incomplete) == 1
    line = rep.incomplete[0].line()
    assert "step200/part-00000-of-00001.parquet: no manifest" in line and "rerun it" in line
    assert snapshot(db) == loaded
    with pytest.raises(IngestError, match="nothing was loaded"):  # ... unless --strict
        load(root, db, strict=True)
    assert snapshot(db) == loaded


def test_manifest_row_count_mismatch(root: Path, db: Path, loaded: dict) -> None:
    write_shard(root, revision="step200", num_shards=1, manifest_overrides={"n_rows": 900})
    line = _only_bad(load(root, db), "step200")
    assert "file has 1000 rows but the manifest says n_rows=900" in line
    assert snapshot(db) == loaded


def test_duplicate_seq_idx_in_a_file(root: Path, db: Path, loaded: dict) -> None:
    t = score_table(0, 1000)
    idx = np.arange(1000)
    idx[10] = 9
    t = t.set_column(0, "seq_idx", pa.array(idx, pa.int64()))
    write_shard(root, revision="step200", num_shards=1, table=t)
    line = _only_bad(load(root, db), "step200")
    assert "duplicate seq_idx: 1 value(s) appear more than once (e.g. 9" in line
    assert snapshot(db) == loaded


def test_shuffled_unique_file_is_fine(root: Path, db: Path, loaded: dict) -> None:
    t = score_table(0, 1000)
    t = t.take(np.random.default_rng(0).permutation(1000))
    write_shard(root, revision="step200", num_shards=1, table=t)
    assert load(root, db).rows == 1000


def test_overlapping_shards_of_one_unit(root: Path, db: Path, loaded: dict) -> None:
    # The unit re-sharded 2 -> 4 while the old parts are still there: duplicate seq_idx.
    write_shard(root, shard=0, num_shards=4)
    line = _only_bad(load(root, db), "part-00000-of-00004.parquet")
    assert "seq_idx range [0, 250) overlaps" in line and "part-00000-of-00002.parquet" in line
    assert snapshot(db) == loaded


def test_same_file_twice_under_another_name(root: Path, db: Path, loaded: dict) -> None:
    # A copy of shard 1 renamed into another unit keeps the run_id of the original.
    src_pq, src_man = contract.shard_paths(root, "demo-1m", "step100", 1, 2)
    dst_pq, dst_man = contract.shard_paths(root, "demo-1m", "step100-copy", 1, 2)
    dst_pq.parent.mkdir(parents=True)
    shutil.copy2(src_pq, dst_pq)
    manifest = json.loads(src_man.read_text()) | {"revision": "step100-copy"}
    contract.write_manifest(dst_man, manifest)
    line = _only_bad(load(root, db), "step100-copy")
    assert "was already loaded from" in line and "copied shard?" in line
    assert snapshot(db) == loaded


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda t: t.set_column(
                1, "prefix_match_len", pa.array(np.full(t.num_rows, 40), pa.int16())
            ),
            "prefix_match_len outside [0, cont_len=32] (seen 40..40)",
        ),
        (
            lambda t: t.set_column(2, "exact_match", pa.array(np.zeros(t.num_rows, bool))),
            "exact_match disagrees with prefix_match_len >= cont_len",
        ),
        (
            lambda t: t.set_column(
                3, "memorization_score", pa.array(np.full(t.num_rows, 1.5), pa.float32())
            ),
            "memorization_score value(s) outside [0, 1]",
        ),
        (
            lambda t: t.set_column(
                4, "tf_token_accuracy", pa.array(np.full(t.num_rows, np.nan), pa.float32())
            ),
            "tf_token_accuracy value(s) outside [0, 1] or NaN",
        ),
        (
            lambda t: t.set_column(0, "seq_idx", pc.add(t["seq_idx"], 5000)),
            "seq_idx values outside the manifest range [0, 1000) (seen 5000..5999)",
        ),
    ],
    ids=["pml>cont_len", "exact_mismatch", "score>1", "accuracy_nan", "seq_out_of_range"],
)
def test_value_ranges(root: Path, db: Path, loaded: dict, mutate, message: str) -> None:
    write_shard(
        root,
        revision="step200",
        num_shards=1,
        table=mutate(score_table(0, 1000)),
        manifest_overrides={"n_exact": None},
    )
    line = _only_bad(load(root, db), "step200")
    assert message in line
    assert snapshot(db) == loaded


def test_bad_manifests(root: Path, db: Path, loaded: dict) -> None:
    _, man = write_shard(root, revision="step200", num_shards=1)
    man.write_text("{not json")
    write_shard(root, revision="step300", num_shards=1, manifest_overrides={"model": "other"})
    write_shard(root, revision="step400", num_shards=1, manifest_overrides={"n_params": "big"})
    rep = load(root, db)
    lines = sorted(p.line() for p in rep.bad)
    assert len(lines) == 3
    assert "step200/part-00000-of-00001.manifest.json: manifest unreadable" in lines[0]
    assert "manifest says model 'other' but the folder says 'demo-1m'" in lines[1]
    assert "manifest field 'n_params' = 'big' is not an integer >= 1" in lines[2]
    assert snapshot(db) == loaded


def test_strict_loads_nothing_when_one_file_is_bad(root: Path, db: Path) -> None:
    write_shard(root, revision="step200", num_shards=1, manifest_overrides={"n_rows": 1})
    with pytest.raises(IngestError) as exc:
        load(root, db, strict=True)
    assert "nothing was loaded (--strict)" in str(exc.value)
    assert len(exc.value.report.bad) == 1
    assert count(db, "SELECT count(*) FROM raw.score_rows") == 0
    assert count(db, "SELECT count(*) FROM raw.runs") == 0


def test_failed_load_leaves_no_partial_file(
    root: Path, db: Path, loaded: dict, monkeypatch
) -> None:
    """A failure after the rows were inserted rolls the whole file back; since the files
    themselves read fine, the database is at fault: one line, no file blamed."""
    write_shard(root, revision="step200", shard=0, num_shards=2)
    write_shard(root, revision="step200", shard=1, num_shards=2)

    def boom(con, rows):
        raise duckdb.IOException("disk full (simulated)")

    monkeypatch.setattr(loader, "record_files", boom)
    with pytest.raises(MemwhError, match=r"writing to the database failed \(.*disk full"):
        load(root, db)
    assert snapshot(db) == loaded


# --------------------------------------------------------------------------- CLI + lock


def test_cli_exit_codes_and_one_line_messages(root: Path, db: Path) -> None:
    r = run_cli("ingest", str(root), "--db", str(db), "-q")
    assert r.returncode == 0, r.stderr
    assert "2 file(s) loaded" in r.stderr and "1,000 rows" in r.stderr
    write_shard(root, revision="step200", num_shards=1, manifest_overrides={"n_rows": 999})
    r = run_cli("ingest", str(root), "--db", str(db), "-q")
    assert r.returncode == 1
    assert "bad:" in r.stderr and "n_rows=999" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("ingest", str(root), "--db", str(db), "-q", "--strict")
    assert r.returncode == 2 and "nothing was loaded (--strict)" in r.stderr
    assert "Traceback" not in r.stderr
    r = run_cli("ingest", str(root / "nope"), "--db", str(db))
    assert r.returncode == 2 and "no such folder" in r.stderr


def test_locked_database(root: Path, db: Path) -> None:
    load(root, db)
    write_shard(root, revision="step200", num_shards=1)
    before = snapshot(db)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, sys, time; c = duckdb.connect({str(db)!r}); print('ready', flush=True); "
            "sys.stdin.read()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        r = run_cli("ingest", str(root), "--db", str(db), "-q")
        assert r.returncode == 2
        assert "database is locked by another process" in r.stderr
        assert f"PID {holder.pid}" in r.stderr and "nothing was changed" in r.stderr
        assert "close the other DuckDB" in r.stderr and "Traceback" not in r.stderr
        with pytest.raises(MemwhError, match="locked"):
            load(root, db)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert snapshot(db) == before
    assert load(root, db).files_loaded == 1  # and it works once the lock is gone
