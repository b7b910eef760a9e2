"""Contract version 2 (rows carry prompt_len) next to version 1 files and databases."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
from ingest_helpers import count, score_table, write_shard

from memwh.core import contract
from memwh.ingest import ingest_root
from memwh.ingest.schema import SCORE_ROWS_DDL


def _multi(lo: int, hi: int, lens: list[int]) -> pa.Table:
    """Rows (seq_idx, prompt_len) sequence-major, as memwh jobs write multi-prompt shards."""
    parts = []
    for j, k in enumerate(lens):
        t = score_table(lo, hi, seed=j)
        parts.append(t.set_column(8, "prompt_len", pa.array(np.full(hi - lo, k, np.int16))))
    return pa.concat_tables(parts).sort_by([("seq_idx", "ascending"), ("prompt_len", "ascending")])


def test_version_1_and_2_shards_load_side_by_side(tmp_path: Path) -> None:
    root, db = tmp_path / "runs", tmp_path / "wh.duckdb"
    v1 = score_table(0, 500).drop(["prompt_len"])
    write_shard(
        root, revision="step1", num_shards=1, total=500, table=v1,
        manifest_overrides={"contract_version": 1, "prompt_len": 48},
    )  # fmt: skip
    write_shard(
        root, revision="step2", num_shards=1, total=500, table=_multi(0, 500, [16, 32]),
        manifest_overrides={"prompt_lens": [16, 32]},
    )  # fmt: skip
    rep = ingest_root(root, db, progress=False)
    assert rep.ok, [p.line() for p in rep.problems]
    got = count(db, "SELECT count(*) FROM raw.scores WHERE revision = 'step1' AND prompt_len = 48")
    assert got == 500
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        "SELECT prompt_len, count(*), count(DISTINCT seq_idx) FROM raw.scores "
        "WHERE revision = 'step2' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    con.close()
    assert rows == [(16, 500, 500), (32, 500, 500)]


def test_prompt_len_outside_the_manifest_is_refused(tmp_path: Path) -> None:
    root, db = tmp_path / "runs", tmp_path / "wh.duckdb"
    write_shard(
        root, revision="step2", num_shards=1, total=500, table=_multi(0, 500, [16, 32]),
        manifest_overrides={"prompt_lens": [8, 32]},
    )  # fmt: skip
    rep = ingest_root(root, db, progress=False)
    assert len(rep.bad) == 1 and "prompt_len values [16, 32]" in rep.bad[0].line()


def test_duplicate_row_per_prompt_length_is_refused(tmp_path: Path) -> None:
    root, db = tmp_path / "runs", tmp_path / "wh.duckdb"
    t = _multi(0, 500, [16, 32])
    plen = t.column("prompt_len").to_numpy().copy()
    plen[1] = 16  # seq 0 scored twice at 16, never at 32
    t = t.set_column(8, "prompt_len", pa.array(plen, pa.int16()))
    write_shard(
        root, revision="step2", num_shards=1, total=500, table=t,
        manifest_overrides={"prompt_lens": [16, 32]},
    )  # fmt: skip
    rep = ingest_root(root, db, progress=False)
    assert len(rep.bad) == 1 and "duplicate seq_idx: 1 value(s)" in rep.bad[0].line()


def test_version_1_database_gets_prompt_len(tmp_path: Path) -> None:
    """A database written before version 2 (no prompt_len column) is upgraded in place."""
    root, db = tmp_path / "runs", tmp_path / "wh.duckdb"
    write_shard(root, revision="step1", num_shards=1, total=300)
    assert ingest_root(root, db, progress=False).ok
    con = duckdb.connect(str(db))
    con.execute("DROP VIEW raw.scores")
    con.execute("CREATE TABLE raw.old AS SELECT * EXCLUDE (prompt_len) FROM raw.score_rows")
    con.execute("DROP TABLE raw.score_rows")
    con.execute(SCORE_ROWS_DDL.replace("prompt_len          SMALLINT,", ""))
    con.execute("INSERT INTO raw.score_rows SELECT * FROM raw.old")
    con.execute("DROP TABLE raw.old")
    con.close()
    write_shard(root, revision="step2", num_shards=1, total=300, table=_multi(0, 300, [8, 32]),
                manifest_overrides={"prompt_lens": [8, 32]})  # fmt: skip
    assert ingest_root(root, db, progress=False).ok
    con = duckdb.connect(str(db), read_only=True)
    rows = con.execute(
        "SELECT revision, prompt_len, count(*) FROM raw.scores GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    con.close()
    assert rows == [("step1", 32, 300), ("step2", 8, 300), ("step2", 32, 300)]
    assert contract.CONTRACT_VERSION == 3


def test_shard_with_another_setting_is_refused_naming_both(tmp_path: Path) -> None:
    """Same unit, other prompt length / EOS rule / mode: one line naming the other file. The
    same checkpoint on another dataset is another unit (model, revision, dataset): stored."""
    root, db = tmp_path / "runs", tmp_path / "wh.duckdb"
    write_shard(root, shard=0, num_shards=2)
    assert ingest_root(root, db, progress=False).ok  # shard 0 is in the database
    write_shard(root, shard=1, num_shards=2, manifest_overrides={"data_fingerprint": "jsonl-x"})
    rep = ingest_root(root, db, progress=False)
    assert rep.ok and rep.files_loaded == 1
    assert count(db, "SELECT count(DISTINCT data_fingerprint) FROM raw.scores") == 2
    v1 = score_table(500, 1000).drop(["prompt_len"])  # a version-1 shard scored at 64
    write_shard(
        root, shard=1, num_shards=2, table=v1,
        manifest_overrides={"contract_version": 1, "prompt_len": 64, "suppress_eos": False},
    )  # fmt: skip
    line = ingest_root(root, db, progress=False).bad[0].line()
    # one settings-agreement check per unit (ingest/validate.py UNIT_SETTINGS)
    assert "part-00001-of-00002.parquet: settings differ from" in line
    assert "part-00000-of-00002.parquet" in line
    assert "prompt_len 64 here vs 32 there" in line
    assert "prompt_lens [64] here vs [32] there" in line
    assert "suppress_eos False here vs True there" in line
    # one unit holds one run's settings: a generate-mode shard beside a fast one is refused too
    write_shard(root, shard=1, num_shards=2, manifest_overrides={"mode": "generate"})
    assert (
        "mode 'generate' here vs 'fast' there"
        in ingest_root(root, db, progress=False).bad[0].line()
    )
    write_shard(root, shard=1, num_shards=2)
    assert ingest_root(root, db, progress=False).ok
    assert count(db, "SELECT count(*) FROM raw.scores") == 1000


def test_version_2_shard_without_label_certainty_is_ingested(tmp_path: Path) -> None:
    """Contract version 3 added label_margin / label_certain / label_verified; a version-2
    file (written before) lacks them and is still read."""
    root, db = tmp_path / "runs", tmp_path / "wh.duckdb"
    v2 = score_table(0, 500).drop(["label_margin", "label_certain", "label_verified"])
    write_shard(root, num_shards=1, total=500, table=v2,
                manifest_overrides={"contract_version": 2})  # fmt: skip
    assert ingest_root(root, db, progress=False).ok
    assert count(db, "SELECT count(*) FROM raw.scores") == 500
    # a version-3 file must hold them
    write_shard(root, revision="step2", num_shards=1, total=500, table=v2)
    bad = ingest_root(root, db, progress=False).bad
    assert "missing column(s) label_margin, label_certain, label_verified" in bad[0].line()
