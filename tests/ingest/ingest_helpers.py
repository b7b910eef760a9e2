"""Helpers for ingest tests: small, realistic shards written with memwh.core.contract's own writers
(as inference jobs do), and raw-table snapshots to prove a database did not change."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from memwh.core import contract

CONT_LEN = 32


def score_table(lo: int, hi: int, seed: int = 0, cont_len: int = CONT_LEN) -> pa.Table:
    """Rows for seq_idx in [lo, hi): a geometric prefix-match distribution with a spike at cont_len."""
    rng = np.random.default_rng(seed + lo)
    n = hi - lo
    pml = np.minimum(rng.geometric(0.3, n) - 1, cont_len).astype(np.int16)
    pml[rng.random(n) < 0.05] = cont_len
    acc = np.minimum(pml + rng.binomial(cont_len, 0.3, n), cont_len).astype(np.float32) / cont_len
    loss = rng.gamma(2.0, 1.0, n).astype(np.float32)
    return pa.table(
        {
            "seq_idx": pa.array(np.arange(lo, hi, dtype=np.int64)),
            "prefix_match_len": pml,
            "exact_match": pml >= cont_len,
            "memorization_score": np.maximum(acc, (pml >= cont_len).astype(np.float32)),
            "tf_token_accuracy": acc,
            "loss": loss,
            "min_k_logprob": -2.0 * loss,
            "zlib_ratio": loss / 3,
            "prompt_len": np.full(n, 32, np.int16),
            "label_margin": rng.gamma(2.0, 1.0, n).astype(np.float32),
            "label_certain": rng.random(n) > 0.01,
            "label_verified": np.zeros(n, bool),
        },
        schema=contract.SCORE_SCHEMA,
    )


def write_shard(
    root: Path,
    model: str = "demo-1m",
    revision: str = "step100",
    shard: int = 0,
    num_shards: int = 2,
    *,
    total: int = 1000,
    table: pa.Table | None = None,
    manifest_overrides: dict[str, Any] | None = None,
    write_manifest: bool = True,
    seed: int = 0,
) -> tuple[Path, Path]:
    """One shard of [0, total) as `memwh infer` writes it; returns (parquet, manifest)."""
    lo, hi = contract.shard_bounds(0, total, shard, num_shards)
    table = score_table(lo, hi, seed) if table is None else table
    pq_path, man_path = contract.shard_paths(root, model, revision, shard, num_shards)
    started = datetime.now(UTC).isoformat()
    sha = contract.write_scores_parquet(table, pq_path, {"model": model})
    manifest: dict[str, Any] = {
        "contract_version": contract.CONTRACT_VERSION,
        "run_id": uuid.uuid4().hex,
        "model": model,
        "model_path": f"/suite/{model}",
        "revision": revision,
        "step": contract.parse_step(revision),
        "family": "demo",
        "n_params": 1_000_000,
        "tokens_seen": 12_800,
        "train_flops": 6 * 1_000_000 * 12_800,
        "sequences_per_step": 2,
        "shard": shard,
        "num_shards": num_shards,
        "seq_start": lo,
        "seq_end": hi,
        "n_rows": table.num_rows,
        "n_exact": int(pa.compute.sum(table["exact_match"].cast(pa.int64())).as_py() or 0)
        if "exact_match" in table.column_names
        and pa.types.is_boolean(table.schema.field("exact_match").type)
        else None,
        "prompt_len": 32,
        "cont_len": CONT_LEN,
        "mode": "fast",
        "suppress_eos": True,
        "dtype": "float32",
        "device": "cpu",
        "batch_size": 64,
        "data_source": "/suite/corpus.parquet",
        "data_fingerprint": "corpus-abc123",
        "parquet_file": pq_path.name,
        "parquet_sha256": sha,
        "started_at": started,
        "finished_at": datetime.now(UTC).isoformat(),
        "host": "node01",
        "slurm_job_id": "4242",
        "versions": {"torch": "2.13.0", "memwh": "0.1.0"},
    }
    manifest.update(manifest_overrides or {})
    if write_manifest:
        contract.write_manifest(man_path, manifest)
    return pq_path, man_path


def snapshot(db: Path) -> dict[str, list]:
    """Full, ordered contents of every raw table: 'unchanged database' means equal snapshots."""
    if not db.exists():
        return {}
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {}
        for t in ("score_rows", "runs", "sequences", "ingested_files", "exposure_sets", "exposure"):
            out[t] = con.execute(f"SELECT * FROM raw.{t} ORDER BY ALL").fetchall()
        return out
    finally:
        con.close()


def count(db: Path, sql: str) -> Any:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()[0][0]
    finally:
        con.close()
