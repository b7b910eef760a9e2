"""Contract version 3's label certainty in the raw layer: loaded from v3 shards, NULL for
version 2 shards, and a database written before the columns existed gains them on open."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
from ingest_helpers import score_table, write_shard

from memwh.core import contract
from memwh.ingest import ingest_root

CERTAINTY = [f.name for f in contract.LABEL_CERTAINTY_FIELDS]


def _rows(db: Path, revision: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            f"SELECT seq_idx, {', '.join(CERTAINTY)} FROM raw.scores "
            "WHERE revision = ? ORDER BY seq_idx",
            [revision],
        ).fetchall()
    finally:
        con.close()


def test_v3_values_load_and_v2_rows_are_null(tmp_path: Path) -> None:
    root, db = tmp_path / "runs", tmp_path / "wh.duckdb"
    v3 = score_table(0, 400)
    verified = np.zeros(400, bool)
    verified[::7] = True
    v3 = v3.set_column(v3.schema.get_field_index("label_verified"), "label_verified",
                       [verified])  # fmt: skip
    write_shard(root, revision="step1", num_shards=1, total=400, table=v3)
    v2 = score_table(0, 400).drop(CERTAINTY)
    write_shard(root, revision="step2", num_shards=1, total=400, table=v2,
                manifest_overrides={"contract_version": 2})  # fmt: skip
    assert ingest_root(root, db, progress=False).ok
    got = _rows(db, "step1")
    np.testing.assert_allclose([r[1] for r in got], v3.column("label_margin").to_numpy())
    assert [r[2] for r in got] == v3.column("label_certain").to_pylist()
    assert [r[3] for r in got] == verified.tolist()
    assert all(r[1:] == (None, None, None) for r in _rows(db, "step2"))


def test_database_without_certainty_columns_gains_them(tmp_path: Path) -> None:
    """A warehouse file of the contract-v2 era: raw.score_rows without the three columns."""
    root, db = tmp_path / "runs", tmp_path / "wh.duckdb"
    write_shard(root, revision="step1", num_shards=1, total=300, table=score_table(0, 300))
    assert ingest_root(root, db, progress=False).ok
    con = duckdb.connect(str(db))
    con.execute("DROP VIEW raw.scores")
    for c in CERTAINTY:
        con.execute(f"ALTER TABLE raw.score_rows DROP COLUMN {c}")
    con.close()
    write_shard(root, revision="step2", num_shards=1, total=300, table=score_table(0, 300, 1))
    assert ingest_root(root, db, progress=False).ok
    assert all(r[1:] == (None, None, None) for r in _rows(db, "step1"))  # loaded before: unknown
    step2 = _rows(db, "step2")
    assert [r[2] for r in step2] == score_table(0, 300, 1).column("label_certain").to_pylist()


def test_warehouse_built_before_the_counts_existed_gains_them(tmp_path: Path) -> None:
    """int_unit_score_cells is incremental: a warehouse built before the certainty counts gains
    the columns; units computed before say NULL (unknown), units added after are counted."""
    from memwh.query import sql
    from memwh.warehouse.build import build

    root, db = tmp_path / "runs", tmp_path / "wh.duckdb"
    write_shard(root, revision="step1", num_shards=1, total=300)
    assert ingest_root(root, db, progress=False).ok
    build(db, quiet=True, target_path=tmp_path / "t", unit_tests=False)
    con = duckdb.connect(str(db))
    for c in ("n_with_certainty", "n_label_uncertain", "n_memorized_uncertain", "n_label_verified"):
        con.execute(f"ALTER TABLE main.int_unit_score_cells DROP COLUMN {c}")
    con.close()
    step2 = score_table(0, 300, seed=3)
    write_shard(root, revision="step2", num_shards=1, total=300, table=step2)
    assert ingest_root(root, db, progress=False).ok
    build(db, quiet=True, target_path=tmp_path / "t", unit_tests=False)
    got = sql(
        "SELECT revision, n_label_uncertain, n_label_verified FROM memorization_rates ORDER BY 1",
        db,
    ).rows()
    n_uncertain = int((~step2.column("label_certain").to_numpy(zero_copy_only=False)).sum())
    assert got == [("step1", None, None), ("step2", n_uncertain, 0)]
