"""The Parquet + manifest contract between inference jobs (writers) and ingest (reader).

This is the only module both sides import. It must stay free of torch and duckdb so
that loading results never needs a GPU stack, and scoring never needs a database.

Layout of an output root::

    ROOT/scores/model=<name>/revision=<rev>/part-00003-of-00016.parquet
    ROOT/scores/model=<name>/revision=<rev>/part-00003-of-00016.manifest.json
    ROOT/sequences/<data_fingerprint>.parquet     (optional per-sequence metadata,
                                                   e.g. duplication counts)
    ROOT/sequences/<data_fingerprint>/windows-w<width>-<lo>-<hi>.parquet
                                                  (the scored token windows, prompt +
                                                   continuation, of [lo, hi): written once per
                                                   dataset range, whichever unit gets there first)

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
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

# Version 2: every row carries its ``prompt_len`` (a shard may score several prompt lengths
# of the same sequences: one row per (seq_idx, prompt_len)); the manifest's ``prompt_len`` is
# the longest and ``prompt_lens`` lists them all. Version 1 files have no such column: all
# their rows were scored with the manifest's ``prompt_len`` (ingest fills it from there).
# Version 3: every row says how certain its label is under the run's dtype (label_margin,
# label_certain, label_verified; docs/contract.md "Certified labels"); version 1 and 2 files
# have no such columns (readers treat them as unknown).
CONTRACT_VERSION = 3

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
# Version 2: the columns of version 1, then prompt_len.
SCORE_SCHEMA_V2 = SCORE_SCHEMA_V1.append(PROMPT_LEN_FIELD)
# Version 3 (current): the columns of version 2, then the label's certainty:
# * label_margin: smallest top-1 minus top-2 logit gap (after the EOS processor) over the
#   positions that decide the label: continuation positions up to and including the first
#   mismatch (all of them for an exact match), in the pass that produced the stored label;
# * label_certain: at every one of those positions the gap exceeds the dtype's rounding
#   tolerance (inference_jobs/certify.py), so a full-precision run gives the same label;
# * label_verified: the row was not certain and --verify checked its label in fp32: the
#   matched prefix and the certificate are fp32's (rows whose label changed were re-scored
#   completely in fp32; the others keep the run's metrics).
# Nullable: NULL where unknown (imported results).
LABEL_CERTAINTY_FIELDS = (
    pa.field("label_margin", pa.float32(), nullable=True),
    pa.field("label_certain", pa.bool_(), nullable=True),
    pa.field("label_verified", pa.bool_(), nullable=True),
)
SCORE_SCHEMA = pa.schema([*SCORE_SCHEMA_V2, *LABEL_CERTAINTY_FIELDS])


def unknown_certainty(n: int) -> dict[str, pa.Array]:
    """The label-certainty columns of `n` rows whose certainty is unknown (synthetic or
    imported rows written through the contract)."""
    return {f.name: pa.nulls(n, f.type) for f in LABEL_CERTAINTY_FIELDS}


# Written only with --save-generations.
GENERATIONS_FIELD = pa.field("generated_tokens", pa.list_(pa.int32()), nullable=True)

REQUIRED_COLUMNS: tuple[str, ...] = tuple(SCORE_SCHEMA.names)


def score_schema(version: int = CONTRACT_VERSION) -> pa.Schema:
    """The score columns a file of contract `version` must hold (1: no prompt_len column;
    2: no label certainty columns)."""
    return SCORE_SCHEMA_V1 if version < 2 else SCORE_SCHEMA_V2 if version < 3 else SCORE_SCHEMA


# Optional per-sequence metadata carried over from the scored dataset when present.
SEQUENCE_META_SCHEMA = pa.schema(
    [
        pa.field("seq_idx", pa.int64(), nullable=False),
        pa.field("duplicates", pa.int32(), nullable=True),
        pa.field("is_canary", pa.bool_(), nullable=True),
        # Controlled insertion (Hubble, TinyMem): what kind of inserted text this is, and
        # the window of training steps (0-based, inclusive) its copies were placed in.
        pa.field("category", pa.string(), nullable=True),
        pa.field("insert_first_step", pa.int64(), nullable=True),
        pa.field("insert_last_step", pa.int64(), nullable=True),
    ]
)
SEQUENCE_META_COLUMNS: tuple[str, ...] = tuple(SEQUENCE_META_SCHEMA.names[1:])
# `memwh infer --keep-columns a,b`: the dataset's own metadata columns a user names, carried as
# one JSON object per sequence ({"a": ..., "b": ...}) after the columns above; the file's
# key-value metadata ``memwh_keep_columns`` lists them (JSON). Absent when none were kept.
SEQUENCE_EXTRA_FIELD = pa.field("extra", pa.string(), nullable=True)
KEEP_COLUMNS_KEY = b"memwh_keep_columns"

# Unit roles of controlled experiments (shared/STUDIES.md §5, §7): a *standard* model is the
# control of *perturbed* ones (trained with inserted text); an *edited* model is a mitigation
# (fine-tuned, regularized, unlearned) of the unit named by variant_of; *reference* and
# *shadow* models serve membership inference.
ROLES: tuple[str, ...] = ("standard", "perturbed", "reference", "edited", "shadow")
ROLE_FIELDS: tuple[str, ...] = ("role", "variant_of", "method", "method_params")

# Scored token windows (prompt + continuation, `width` = prompt_len + cont_len tokens) of one
# dataset range. They belong to the dataset, not to a unit: every unit scoring the same range
# of the same data (same data_fingerprint) would write the same bytes, so the file is written
# once and the warehouse stores each (data_fingerprint, seq_idx) once.
WINDOW_SCHEMA = pa.schema(
    [
        pa.field("seq_idx", pa.int64(), nullable=False),
        pa.field("tokens", pa.list_(pa.int32()), nullable=False),
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
    "family",  # model family for cross-scale comparisons (e.g. pythia, pythia-deduped, demo);
    # null when nobody stated it (the warehouse then guesses from the label and says so)
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
    "role",  # one of ROLES (controlled experiments); absent = undeclared
    "variant_of",  # "model@revision" of the base unit (edited/perturbed variants)
    "method",  # how the variant was made (e.g. fine-tune, unlearn), free text
    "method_params",  # JSON object of the method's parameters
    "settings",  # memwh.core.run_settings.RunSettings.to_dict(): what the rows depend on
    "metadata_source",  # {fact: stated | suite | measured | revision | derived}
    "label_verification",  # version 3: the tolerance rule and --verify's counts (docs/contract.md)
)

# The dataset of a unit whose manifest names none (version-1 shards written without
# data_fingerprint, imports without --dataset): a unit is (model, revision, dataset), and
# such units share this key (the warehouse's macro dataset_key() uses the same string).
NO_DATASET = "unspecified"

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


def _umask() -> int:
    """The process umask: from /proc on Linux (no race with other threads), else by setting
    and restoring it."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _publish(tmp: str | os.PathLike, path: Path) -> None:
    """Give a finished temp file the mode a plain open() would (0666 minus the umask:
    mkstemp makes 0600, so group members' ingest could not read a cluster's results),
    then rename it into place."""
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


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
        _publish(tmp, path)
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
        _publish(tmp, path)
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
    except PermissionError as e:
        raise ContractError(
            f"{path}: cannot read the manifest ({e.strerror}); fix its permissions "
            "or ingest as a user who can read it"
        ) from None
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


_WINDOWS_RE = re.compile(r"^windows-w(\d+)-(\d+)-(\d+)\.parquet$")


def windows_path(
    root: str | os.PathLike, data_fingerprint: str, width: int, lo: int, hi: int
) -> Path:
    """Token windows of width `width` for seq_idx in [lo, hi) of one dataset."""
    fp = _safe_component(data_fingerprint, "fingerprint")
    return Path(root) / "sequences" / fp / f"windows-w{width}-{lo}-{hi}.parquet"


def parse_windows_name(name: str) -> tuple[int, int, int] | None:
    """(width, lo, hi) of a windows file name, None for other files."""
    m = _WINDOWS_RE.match(name)
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None


def write_windows(path: str | os.PathLike, chunks: Iterable[tuple[np.ndarray, np.ndarray]]) -> int:
    """Atomically write (seq_idx[n], tokens[n, width]) chunks as a WINDOW_SCHEMA file; returns rows.

    Chunked so a shard of millions of sequences never holds all its tokens in memory.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    rows = 0
    try:
        with pq.ParquetWriter(tmp, WINDOW_SCHEMA, compression="zstd") as w:
            for idx, toks in chunks:
                toks = np.ascontiguousarray(toks, dtype=np.int32)
                n, width = toks.shape
                offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
                tokens = pa.ListArray.from_arrays(pa.array(offsets), pa.array(toks.reshape(-1)))
                w.write_table(
                    pa.Table.from_arrays(
                        [pa.array(np.asarray(idx, dtype=np.int64)), tokens], schema=WINDOW_SCHEMA
                    )
                )
                rows += n
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        _publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return rows


def sequence_meta_table(columns: Mapping[str, Any], seq_idx: pa.Array) -> pa.Table:
    """SEQUENCE_META_SCHEMA table from the metadata columns a source has (others NULL)."""
    n = len(seq_idx)
    arrays = [pa.array(seq_idx).cast(pa.int64())]
    for f in list(SEQUENCE_META_SCHEMA)[1:]:
        col = columns.get(f.name)
        arrays.append(pa.nulls(n, f.type) if col is None else col.cast(f.type))
    return pa.Table.from_arrays(arrays, schema=SEQUENCE_META_SCHEMA)


def parse_unit_ref(text: str, what: str = "variant_of") -> tuple[str, str]:
    """ "model@revision" -> (model, revision); a one-line ContractError otherwise."""
    model, sep, revision = (text or "").rpartition("@")
    if not sep or not model.strip() or not revision.strip() or "\n" in text:
        raise ContractError(
            f"{what} {text!r}: name the base unit as MODEL@REVISION (e.g. demo-1.1m@step383)"
        )
    return model, revision


def check_role_fields(
    fields: Mapping[str, Any], *, model: str | None = None, revision: str | None = None
) -> dict[str, Any]:
    """Validate role, variant_of, method, method_params; returns them normalized (method_params
    as a canonical JSON string). A unit that is its own variant is refused here; whether the
    base exists and whether variants form a cycle needs the registry (ingest checks it)."""
    role = fields.get("role")
    if role is not None and role not in ROLES:
        raise ContractError(f"role {role!r} is unknown; use one of {', '.join(ROLES)}")
    variant_of = fields.get("variant_of")
    if variant_of is not None:
        if not isinstance(variant_of, str):
            raise ContractError(f"variant_of {variant_of!r}: give MODEL@REVISION as a string")
        base = parse_unit_ref(variant_of)
        if model is not None and base == (model, revision):
            raise ContractError(f"variant_of {variant_of!r} names the unit itself")
    method = fields.get("method")
    if method is not None and (not isinstance(method, str) or not method.strip()):
        raise ContractError(f"method {method!r}: give a non-empty name (e.g. fine-tune)")
    params = fields.get("method_params")
    if params is not None:
        if isinstance(params, str):
            try:
                params = json.loads(params)
            except json.JSONDecodeError as e:
                raise ContractError(f"method_params is not valid JSON ({e.msg})") from None
        if not isinstance(params, dict):
            raise ContractError("method_params must be a JSON object, e.g. '{\"lr\": 1e-4}'")
        params = json.dumps(params, sort_keys=True)
    if role == "edited" and variant_of is None:
        raise ContractError("role edited needs variant_of (the base unit MODEL@REVISION)")
    if (method is not None or params is not None) and variant_of is None:
        raise ContractError("method/method_params describe a variant: also give variant_of")
    return {"role": role, "variant_of": variant_of, "method": method, "method_params": params}
