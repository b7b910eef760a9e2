"""A small synthetic shadow population written through the real ingest path: score shards with
memwh.core.contract's writers (role in the manifest, as `memwh infer --role shadow` writes
them), `memwh ingest`, one exposure table per model (`memwh import exposure`).

Population 'shdw' on dataset 'shadow-data': N_SHADOW shadow models, each trained on a random
half of N_SEQ sequences, plus edge cases the marts must handle:
* seq 0 is in every shadow model but one, seq 1 in exactly one (n_out / n_in = 1: NULL LiRA
  online and counterfactual; offline NULL for seq 0 only);
* 'shdw-noexp' has role shadow but no exposure: excluded, with a reason;
* 'shdw-target' (role perturbed) is the audited unit, trained on its own random half; at seq 2
  its loss sits ~20 out-sds below the out fit, at seq 3 ~180 above (both tails of offline
  LiRA's Gaussian).
Signals: loss = difficulty(seq) - effect(seq) * in + noise; the per-sequence effect varies, so
a sequence's shadow fits tell members apart better than a global loss threshold does.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from memwh.core import contract

FAMILY = "shdw"
DATASET = "shadow-data"
N_SEQ = 120
N_SHADOW = 12
TARGET = "shdw-target"
NO_EXPOSURE = "shdw-noexp"


def _signals(rng: np.random.Generator, difficulty, effect, is_in) -> dict[str, np.ndarray]:
    n = len(difficulty)
    loss = (difficulty - effect * is_in + rng.normal(0, 0.15, n)).astype(np.float32)
    pml = np.clip(np.round(12 * effect * is_in + rng.integers(0, 4, n)), 0, 32).astype(np.int16)
    acc = np.clip(0.3 + 0.4 * effect * is_in + rng.normal(0, 0.05, n), 0, 1).astype(np.float32)
    zlib = (loss / 3 + rng.normal(0, 0.02, n)).astype(np.float32)
    zlib_null = rng.random(n) < 0.05
    return {
        "prefix_match_len": pml,
        "exact_match": pml >= 32,
        "memorization_score": np.maximum(acc, (pml >= 32).astype(np.float32)),
        "tf_token_accuracy": acc,
        "loss": loss,
        "min_k_logprob": (-2.0 * loss - rng.random(n)).astype(np.float32),
        "zlib_ratio": pa.array(zlib, mask=zlib_null),
    }


def write_shard(root: Path, model: str, role: str, signals: dict, n: int) -> None:
    """One shard of seq_idx [0, n) as `memwh infer` writes it."""
    table = pa.table(
        {
            "seq_idx": np.arange(n, dtype=np.int64),
            **signals,
            "prompt_len": np.full(n, 32, np.int16),
            **contract.unknown_certainty(n),
        },
        schema=contract.SCORE_SCHEMA,
    )
    pq_path, man_path = contract.shard_paths(root, model, "main", 0, 1)
    sha = contract.write_scores_parquet(table, pq_path, {"model": model})
    now = datetime.now(UTC).isoformat()
    contract.write_manifest(
        man_path,
        {
            "contract_version": contract.CONTRACT_VERSION,
            "run_id": uuid.uuid4().hex,
            "model": model,
            "model_path": f"/shadow/{model}",
            "revision": "main",
            "step": None,
            "family": FAMILY,
            "n_params": 100_000,
            "shard": 0,
            "num_shards": 1,
            "seq_start": 0,
            "seq_end": n,
            "n_rows": n,
            "n_exact": int(np.count_nonzero(signals["exact_match"])),
            "prompt_len": 32,
            "cont_len": 32,
            "mode": "generate",
            "suppress_eos": True,
            "data_source": "/shadow/corpus.parquet",
            "data_fingerprint": DATASET,
            "parquet_file": pq_path.name,
            "parquet_sha256": sha,
            "started_at": now,
            "finished_at": now,
            "role": role,
        },
    )


def write_exposure(path: Path, is_in: np.ndarray) -> Path:
    """seq_idx, first_step (0 = trained, NULL = never) of one model."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    first = pa.array(np.zeros(len(is_in), np.int64), mask=~is_in.astype(bool))
    pq.write_table(
        pa.table({"seq_idx": np.arange(len(is_in), dtype=np.int64), "first_step": first}), path
    )
    return path


def build_population(d: Path, db: Path, seed: int = 7, reverse_ingest: bool = False) -> dict:
    """Write, ingest and declare the population under `d`; returns the membership matrix.
    reverse_ingest: each model in its own output root, ingested one by one in reverse order
    (the same rows stored in another order)."""
    from memwh.ingest import import_exposure, ingest_root

    rng = np.random.default_rng(seed)
    difficulty = rng.normal(3.0, 0.5, N_SEQ)
    effect = rng.gamma(2.0, 0.25, N_SEQ)  # how much training on the sequence lowers its loss
    keep = rng.random((N_SHADOW, N_SEQ)) < 0.5
    keep[:, 0] = True
    keep[0, 0] = False  # seq 0: one out model
    keep[:, 1] = False
    keep[0, 1] = True  # seq 1: one in model
    target_in = rng.random(N_SEQ) < 0.5
    target_in[2] = True
    root = d / "runs"
    roots = {}  # model -> its output root
    models = {}
    for i in range(N_SHADOW):
        model = f"shdw-{i:02d}"
        roots[model] = root / model if reverse_ingest else root
        write_shard(
            roots[model], model, "shadow", _signals(rng, difficulty, effect, keep[i]), N_SEQ
        )
        models[model] = keep[i]
    roots[NO_EXPOSURE] = root / NO_EXPOSURE if reverse_ingest else root
    write_shard(
        roots[NO_EXPOSURE], NO_EXPOSURE, "shadow", _signals(rng, difficulty, effect, keep[1]), N_SEQ
    )
    sig = _signals(rng, difficulty, effect, target_in)
    sig["loss"][2] = np.float32(0.0)  # ~20 out-sds into the member tail of seq 2's out fit
    sig["loss"][3] = np.float32(30.0)  # ~180 out-sds on the non-member side of seq 3
    roots[TARGET] = root / TARGET if reverse_ingest else root
    write_shard(roots[TARGET], TARGET, "perturbed", sig, N_SEQ)
    for r in dict.fromkeys(reversed(roots.values())):
        ingest_root(r, db, progress=False)
    for model, is_in in {**models, TARGET: target_in}.items():
        import_exposure(
            write_exposure(d / "exposure" / f"{model}.parquet", is_in), model=model, db=db
        )
    return {"keep": models, "target_in": target_in}
