"""Token windows (ROOT/sequences/<fp>/windows-*.parquet) and saved generations in the raw layer:
windows once per (dataset, seq_idx) whatever the number of units, `--windows memorized`
keeping only memorized sequences' tokens, generations replaced and pruned with their run."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from ingest_helpers import count, score_table, write_shard

from memwh.core import contract
from memwh.core.errors import MemwhError
from memwh.ingest import ingest_root

FP = "corpus-abc123"  # the data_fingerprint write_shard's manifests carry
WIDTH = 64


def _tokens(idx: np.ndarray) -> np.ndarray:
    """Deterministic windows: token j of sequence i is (i * 7 + j) % 50000."""
    return (idx[:, None] * 7 + np.arange(WIDTH)[None, :]) % 50_000


def _windows(root: Path, lo: int, hi: int, width: int = WIDTH) -> Path:
    idx = np.arange(lo, hi)
    path = contract.windows_path(root, FP, width, lo, hi)
    contract.write_windows(
        path,
        [(idx[:100], _tokens(idx[:100])[:, :width]), (idx[100:], _tokens(idx[100:])[:, :width])],
    )
    return path


def _two_units(root: Path) -> None:
    for model in ("demo-1m", "demo-4m"):
        for shard in (0, 1):
            write_shard(root, model=model, shard=shard, seed=hash(model) % 100)
    _windows(root, 0, 500)
    _windows(root, 500, 1000)


def test_windows_are_stored_once_per_dataset(tmp_path: Path) -> None:
    root, db = tmp_path / "runs", tmp_path / "wh.duckdb"
    _two_units(root)
    rep = ingest_root(root, db, progress=False)
    assert rep.ok, rep.problems
    assert rep.window_rows == 1000
    assert count(db, "SELECT count(*) FROM raw.sequence_windows") == 1000
    assert (
        count(db, "SELECT count(DISTINCT (data_fingerprint, seq_idx)) FROM raw.sequence_windows")
        == 1000
    )
    con = duckdb.connect(str(db), read_only=True)
    got = con.sql("SELECT seq_idx, tokens FROM raw.sequence_windows ORDER BY seq_idx").fetchall()
    con.close()
    want = _tokens(np.arange(1000))
    assert all(list(t) == want[i].tolist() for i, (s, t) in enumerate(got) if s == i)
    # a second ingest reads nothing new; a wider window replaces the narrower one
    again = ingest_root(root, db, progress=False)
    assert again.window_rows == 0
    assert count(db, "SELECT count(*) FROM raw.sequence_windows") == 1000


def test_wider_window_replaces_narrower(tmp_path: Path) -> None:
    root, db = tmp_path / "runs", tmp_path / "wh.duckdb"
    write_shard(root, shard=0)
    write_shard(root, shard=1)
    _windows(root, 0, 500, width=48)
    ingest_root(root, db, progress=False)
    assert count(db, "SELECT max(len(tokens)) FROM raw.sequence_windows") == 48
    _windows(root, 0, 500, width=WIDTH)
    ingest_root(root, db, progress=False)
    assert count(db, "SELECT count(*) FROM raw.sequence_windows") == 500
    assert count(db, "SELECT min(len(tokens)) FROM raw.sequence_windows") == WIDTH


def test_memorized_only_keeps_exact_matches_and_catches_up(tmp_path: Path) -> None:
    root, db = tmp_path / "runs", tmp_path / "wh.duckdb"
    write_shard(root, model="demo-1m", shard=0)
    write_shard(root, model="demo-1m", shard=1)
    _windows(root, 0, 500)
    _windows(root, 500, 1000)
    rep = ingest_root(root, db, progress=False, windows="memorized")
    mem = set(
        np.flatnonzero(
            np.concatenate(
                [
                    score_table(0, 500)["exact_match"].to_numpy(),
                    score_table(500, 1000)["exact_match"].to_numpy(),
                ]
            )
        ).tolist()
    )
    assert 0 < len(mem) < 200
    con = duckdb.connect(str(db), read_only=True)
    stored = {r[0] for r in con.sql("SELECT seq_idx FROM raw.sequence_windows").fetchall()}
    con.close()
    assert stored == mem and rep.window_rows == len(mem)
    # a new unit memorizing other sequences: its windows are added on the next ingest
    write_shard(root, model="demo-4m", shard=0, seed=7)
    write_shard(root, model="demo-4m", shard=1, seed=7)
    ingest_root(root, db, progress=False, windows="memorized")
    want = mem | set(
        np.flatnonzero(
            np.concatenate(
                [
                    score_table(0, 500, 7)["exact_match"].to_numpy(),
                    score_table(500, 1000, 7)["exact_match"].to_numpy(),
                ]
            )
        ).tolist()
    )
    con = duckdb.connect(str(db), read_only=True)
    stored = {r[0] for r in con.sql("SELECT seq_idx FROM raw.sequence_windows").fetchall()}
    con.close()
    assert stored == want and len(want) > len(mem)


def test_windows_option_is_checked(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    write_shard(root, shard=0)
    with pytest.raises(MemwhError, match="--windows"):
        ingest_root(root, tmp_path / "wh.duckdb", progress=False, windows="some")


def test_generations_load_with_their_run_and_go_with_it(tmp_path: Path) -> None:
    root, db = tmp_path / "runs", tmp_path / "wh.duckdb"
    t = score_table(0, 500)
    gen = pa.array([[int(i), int(i) + 1] for i in range(500)], contract.GENERATIONS_FIELD.type)
    t = t.append_column(contract.GENERATIONS_FIELD, gen)
    write_shard(root, shard=0, table=t, manifest_overrides={"mode": "generate"})
    # the unit's other shard: generate mode too (shards of a unit agree on settings), saved
    # without generations
    write_shard(root, shard=1, manifest_overrides={"mode": "generate"})
    assert ingest_root(root, db, progress=False).ok
    assert count(db, "SELECT count(*) FROM raw.generations") == 500
    assert count(db, "SELECT generated_tokens FROM raw.generations WHERE seq_idx = 7") == [7, 8]
    # a --force rerun of the shard (new run_id) replaces its generations
    write_shard(root, shard=0, table=t.slice(0, 500), manifest_overrides={"mode": "generate"})
    assert ingest_root(root, db, progress=False).ok
    assert count(db, "SELECT count(*) FROM raw.generations") == 500
    assert count(db, "SELECT count(DISTINCT run_id) FROM raw.generations") == 1
