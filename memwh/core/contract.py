"""The Parquet + manifest contract between inference jobs (writers) and ingest (reader).

This is the only module both sides import. It must stay free of torch and duckdb so
that loading results never needs a GPU stack, and scoring never needs a database.

Layout of an output root::

    ROOT/scores/model=<name>/revision=<rev>/part-00003-of-00016.parquet
    ROOT/scores/model=<name>/revision=<rev>/part-00003-of-00016.manifest.json
    ROOT/sequences/<data_fingerprint>.parquet     (optional per-sequence metadata,
                                                   e.g. duplication counts)

A shard is *complete* when its manifest exists: the Parquet file is written first under
a temporary name and renamed atomically, then the manifest (also atomic) is the
completion marker. A Parquet file without manifest is an interrupted or running shard.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

# Version 2: every row carries its ``prompt_len`` (a shard may score several prompt lengths
# of the same sequences: one row per (seq_idx, prompt_len)); the manifest's ``prompt_len`` is
# the longest and ``prompt_lens`` lists them all. Version 1 files have no such column: all
# their rows were scored with the manifest's ``prompt_len`` (ingest fills it from there).
CONTRACT_VERSION = 2

# Per-sequence score columns, in file order. Nullability is part of the contract:
# memorization_score is NULL in fast mode (needs real generation after a mismatch).
SCORE_SCHEMA_V1 = pa.schema(
    [
        pa.field("seq_idx", pa.int64(), nullable=False),
        pa.field("prefix_match_len", pa.int16(), nullable=False),
        pa.field("exact_match", pa.bool_(), nullable=False),
        pa.field("memorization_score", pa.float32(), nullable=True),
        pa.field("tf_token_accuracy", pa.float32(), nullable=False),
        pa.field("loss", pa.float32(), nullable=False),
        pa.field("min_k_logprob", pa.float32(), nullable=False),
        pa.field("zlib_ratio", pa.float32(), nullable=True),
    ]
)
PROMPT_LEN_FIELD = pa.field("prompt_len", pa.int16(), nullable=False)
# Version 2 (current): the columns of version 1, then prompt_len.
SCORE_SCHEMA = SCORE_SCHEMA_V1.append(PROMPT_LEN_FIELD)
# Written only with --save-generations.
GENERATIONS_FIELD = pa.field("generated_tokens", pa.list_(pa.int32()), nullable=True)

REQUIRED_COLUMNS: tuple[str, ...] = tuple(SCORE_SCHEMA.names)


def score_schema(version: int = CONTRACT_VERSION) -> pa.Schema:
    """The score columns a file of contract `version` must hold (1: no prompt_len column)."""
    return SCORE_SCHEMA_V1 if version < 2 else SCORE_SCHEMA


# Optional per-sequence metadata carried over from the scored dataset when present.
SEQUENCE_META_SCHEMA = pa.schema(
    [
        pa.field("seq_idx", pa.int64(), nullable=False),
        pa.field("duplicates", pa.int32(), nullable=True),
        pa.field("is_canary", pa.bool_(), nullable=True),
    ]
)

# Manifest keys every writer must fill (None allowed where marked optional below).
MANIFEST_REQUIRED: tuple[str, ...] = (
    "contract_version",
    "run_id",  # uuid4 hex, unique per shard execution (a --force rerun gets a new one)
    "model",  # label used in the warehouse (e.g. pythia-1.4b, demo-4m)
    "model_path",  # local folder or hub id as given
    "revision",  # e.g. step143000; "main" when none
    "shard",
    "num_shards",
    "seq_start",  # inclusive
    "seq_end",  # exclusive
    "n_rows",
    "prompt_len",  # the longest prompt length scored (version 2: see prompt_lens)
    "cont_len",
    "mode",  # fast | generate | imported
    "suppress_eos",
    "parquet_file",  # file name (relative to the manifest's folder)
    "parquet_sha256",
    "started_at",  # ISO-8601 UTC
    "finished_at",
)
MANIFEST_OPTIONAL: tuple[str, ...] = (
    "prompt_lens",  # version 2: every prompt length scored, ascending (absent = [prompt_len])
    "step",  # int parsed from revision when it is stepN
    "commit_hash",
    "n_params",
    "non_embedding_params",
    "family",  # model family for cross-scale comparisons (e.g. pythia, pythia-deduped, demo)
    "tokens_per_step",  # training tokens per optimizer step, when known
    "sequences_per_step",  # training sequences per step: step N has seen seq_idx < N * this
    "tokens_seen",  # training tokens seen at this checkpoint, when known
    "train_flops",  # 6 * N * D at this checkpoint, when known
    "dtype",
    "device",
    "batch_size",
    "eos_token_id",
    "min_k_fraction",
    "data_source",
    "data_fingerprint",
    "n_exact",
    "host",
    "slurm_job_id",
    "slurm_array_job_id",
    "slurm_array_task_id",
    "versions",  # {"torch": ..., "transformers": ..., "memwh": ...}
    "git_sha",
    "wall_seconds",
)

_PART_RE = re.compile(r"^part-(\d{5})-of-(\d{5})$")


class ContractError(ValueError):
    """A file or manifest does not follow the contract; message is one line for users."""


def _safe_component(value: str, what: str) -> str:
    if not value or "/" in value or value in (".", "..") or "\n" in value:
        raise ContractError(f"{what} {value!r} cannot be used in a path: pick a plain name")
    return value


def unit_dir(root: str | os.PathLike, model: str, revision: str) -> Path:
    """Folder holding all shards of one unit (model x revision)."""
    return (
        Path(root)
        / "scores"
        / f"model={_safe_component(model, 'model name')}"
        / f"revision={_safe_component(revision, 'revision')}"
    )


def part_stem(shard: int, num_shards: int) -> str:
    if not (0 <= shard < num_shards):
        raise ContractError(f"shard {shard} is outside 0..{num_shards - 1}")
    return f"part-{shard:05d}-of-{num_shards:05d}"


def shard_paths(
    root: str | os.PathLike, model: str, revision: str, shard: int, num_shards: int
) -> tuple[Path, Path]:
    """(parquet path, manifest path) of one shard."""
    d = unit_dir(root, model, revision)
    stem = part_stem(shard, num_shards)
    return d / f"{stem}.parquet", d / f"{stem}.manifest.json"


def manifest_path_for(parquet_path: str | os.PathLike) -> Path:
    p = Path(parquet_path)
    return p.with_name(p.name.removesuffix(".parquet") + ".manifest.json")


def shard_bounds(start: int, end: int, shard: int, num_shards: int) -> tuple[int, int]:
    """Deterministic contiguous [lo, hi) of shard `shard` out of `num_shards` over [start, end)."""
    if num_shards < 1:
        raise ContractError("num_shards must be >= 1")
    part_stem(shard, num_shards)
    n = end - start
    lo = start + (n * shard) // num_shards
    hi = start + (n * (shard + 1)) // num_shards
    return lo, hi


def parse_step(revision: str) -> int | None:
    m = re.fullmatch(r"step(\d+)", revision or "")
    return int(m.group(1)) if m else None


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write via a temp file in the same folder + fsync + rename (readers never see half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_scores_parquet(
    table: pa.Table, path: str | os.PathLike, metadata: Mapping[str, Any] | None = None
) -> str:
    """Atomically write a score table (zstd) with the manifest as key-value metadata.

    Returns the file's sha256 so the manifest can pin the exact bytes it describes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    version = int((metadata or {}).get("contract_version", 1))
    missing = [c for c in score_schema(version).names if c not in table.column_names]
    if missing:
        raise ContractError(f"score table lacks columns {missing}")
    if metadata:
        md = dict(table.schema.metadata or {})
        md[b"memwh"] = json.dumps(dict(metadata), default=str).encode()
        table = table.replace_schema_metadata(md)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        pq.write_table(table, tmp, compression="zstd", row_group_size=1 << 20)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        digest = sha256_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest


def write_manifest(path: str | os.PathLike, manifest: Mapping[str, Any]) -> None:
    """Atomically write the completion marker. Validates required keys first."""
    missing = [k for k in MANIFEST_REQUIRED if k not in manifest]
    if missing:
        raise ContractError(f"manifest {path} lacks keys {missing}")
    atomic_write_bytes(path, (json.dumps(dict(manifest), indent=2, default=str) + "\n").encode())


def read_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """Load and check a manifest; raises ContractError with a one-line reason."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ContractError(f"{path}: manifest missing (shard incomplete: rerun it)") from None
    except (OSError, json.JSONDecodeError) as e:
        raise ContractError(
            f"{path}: manifest unreadable ({e}); rerun the shard with --force"
        ) from None
    if not isinstance(data, dict):
        raise ContractError(f"{path}: manifest is not a JSON object; rerun the shard with --force")
    missing = [k for k in MANIFEST_REQUIRED if k not in data]
    if missing:
        raise ContractError(
            f"{path}: manifest lacks {', '.join(missing)}; rerun the shard with --force"
        )
    return data


def is_complete(
    root: str | os.PathLike, model: str, revision: str, shard: int, num_shards: int
) -> bool:
    """A shard is done when its manifest exists and the Parquet file it names is there."""
    pq_path, man_path = shard_paths(root, model, revision, shard, num_shards)
    return man_path.is_file() and pq_path.is_file()


def iter_manifests(root: str | os.PathLike) -> list[Path]:
    """All shard manifests under ROOT/scores, sorted (stable ingest order)."""
    base = Path(root) / "scores"
    if not base.is_dir():
        return []
    return sorted(base.glob("model=*/revision=*/part-*-of-*.manifest.json"))


def sequences_meta_path(root: str | os.PathLike, data_fingerprint: str) -> Path:
    return Path(root) / "sequences" / f"{_safe_component(data_fingerprint, 'fingerprint')}.parquet"
