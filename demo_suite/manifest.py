"""The suite manifest: one row per checkpoint, plus the settings and their hash (cache key).

`suite_manifest.json` = {"config_hash", "settings", "corpus", "models", "checkpoints": [...]}
`suite_manifest.csv`  = the "checkpoints" rows as a flat table.

Training compute follows C = 6 * N * D with N = **total** parameters (`n_params`, embeddings
and output head included, as in the Pythia suite's compute plots) and D = tokens seen.
With a 2k vocabulary the output head is a real share of the compute of these tiny models,
so excluding it (Kaplan's non-embedding N) would understate the small models' cost.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from memwh.core.contract import atomic_write_bytes
from memwh.core.errors import MemwhError

MANIFEST_JSON = "suite_manifest.json"
MANIFEST_CSV = "suite_manifest.csv"

CHECKPOINT_COLUMNS: tuple[str, ...] = (
    "model",
    "family",
    "revision",
    "step",
    "n_params",
    "non_embedding_params",
    "tokens_per_step",
    "sequences_per_step",
    "tokens_seen",
    "train_flops",
    "train_loss",
    "path",
)


def checkpoint_row(
    *,
    model: str,
    family: str,
    step: int,
    n_params: int,
    non_embedding_params: int,
    sequences_per_step: int,
    seq_len: int,
    train_loss: float | None,
    path: str,
) -> dict[str, Any]:
    tokens_per_step = sequences_per_step * seq_len
    tokens_seen = step * tokens_per_step
    return {
        "model": model,
        "family": family,
        "revision": f"step{step}",
        "step": step,
        "n_params": n_params,
        "non_embedding_params": non_embedding_params,
        "tokens_per_step": tokens_per_step,
        "sequences_per_step": sequences_per_step,
        "tokens_seen": tokens_seen,
        "train_flops": 6 * n_params * tokens_seen,
        "train_loss": None if train_loss is None else round(train_loss, 5),
        "path": path,
    }


def write_manifest(suite_dir: Path, manifest: dict[str, Any]) -> None:
    """CSV first, JSON last: the JSON (with the config hash) marks the suite complete."""
    rows = manifest["checkpoints"]
    df = pl.DataFrame(rows, schema_overrides={"train_flops": pl.Int64}).select(CHECKPOINT_COLUMNS)
    atomic_write_bytes(suite_dir / MANIFEST_CSV, df.write_csv().encode())
    atomic_write_bytes(suite_dir / MANIFEST_JSON, (json.dumps(manifest, indent=2) + "\n").encode())


def read_manifest(suite_dir: str | Path) -> dict[str, Any]:
    """Load a suite's manifest, with a one-line error naming the file when it is unusable."""
    path = Path(suite_dir) / MANIFEST_JSON
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise MemwhError(f"{path}: no suite manifest; build it with `memwh suite build`") from None
    except (OSError, json.JSONDecodeError) as e:
        raise MemwhError(
            f"{path}: unreadable suite manifest ({e}); rebuild with `memwh suite build`"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("checkpoints"), list):
        raise MemwhError(f"{path}: field 'checkpoints' missing; rebuild with `memwh suite build`")
    return data


def checkpoints_frame(suite_dir: str | Path) -> pl.DataFrame:
    """The checkpoint rows as a polars DataFrame (size order, then step)."""
    return pl.DataFrame(read_manifest(suite_dir)["checkpoints"]).select(CHECKPOINT_COLUMNS)


def is_complete(suite_dir: Path, config_hash: str) -> bool:
    """True when a finished suite with this config hash is on disk (cache hit)."""
    try:
        data = json.loads((suite_dir / MANIFEST_JSON).read_text())
    except (OSError, json.JSONDecodeError):
        return False
    if not isinstance(data, dict) or data.get("config_hash") != config_hash:
        return False
    if not (suite_dir / data.get("corpus", {}).get("path", "corpus.parquet")).is_file():
        return False
    ckpts = data.get("checkpoints") or []
    return bool(ckpts) and all(
        (suite_dir / c["path"] / "model.safetensors").is_file()
        and (suite_dir / c["path"] / "config.json").is_file()
        for c in ckpts
    )
