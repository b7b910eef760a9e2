"""The settings that define a scoring run: ONE record, read by every place that asks "same run?".

Two shards with equal settings hold the same rows, so:

* completion: a finished shard is reused only when its manifest's settings equal the request
  (`compare`), otherwise the run stops and names the differing settings;
* resume: the ``.partial`` folder's ``settings.json`` is this record's dict; flushed batches are
  reused only when it equals the request exactly (batch boundaries included);
* the manifest carries it as its ``settings`` block (and the flat contract keys are written
  from it), so ingest and the warehouse read the same values the job compared.

Per-field metadata says how a field takes part in comparisons:

* ``completion=False``: needed to resume bit-identically but not to reuse a finished shard
  (``batch_size``: the boundaries of flushed batches, not the rows' values);
* ``late=True``: a request may not know it before the model is loaded (a hub commit; dtype
  ``auto`` before the device is known). ``None`` in a request means "not known yet" and the
  field is not compared; the run records the resolved value.

To add a setting: add a field (with a default when older manifests lack it, see
`OLD_MANIFEST_DEFAULTS`), fill it where the request is built (inference_jobs.plan), and it is
compared, resumed and recorded everywhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from memwh.core import contract

MANIFEST_KEY = "settings"  # the manifest's block holding RunSettings.to_dict()
_LATE = {"late": True}
_RESUME_ONLY = {"completion": False}


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """What a shard's rows depend on (see module docstring); frozen, comparable, JSON-able."""

    model: str  # label in the warehouse (the output folder model=<label>)
    model_path: str  # resolved: absolute local folder of the checkpoint, or the hub id
    commit_hash: str | None = field(default=None, metadata=_LATE)
    revision: str
    data_fingerprint: str
    seq_range: tuple[int, int]  # the whole range the shards split [start, end)
    shard: int
    num_shards: int
    prompt_len: int  # the longest prompt length: the scored window is prompt_len + cont_len
    cont_len: int
    mode: str  # fast | generate
    suppress_eos: bool
    dtype: str | None = field(default=None, metadata=_LATE)  # resolved torch name: float32 ...
    save_generations: bool = False
    batch_size: int | None = field(default=None, metadata=_RESUME_ONLY)
    # Shorter prompt lengths scored too (multi-prompt runs: one row per sequence and prompt
    # length), ascending; () when only prompt_len is scored, so single-prompt records equal
    # those written before multi-prompt scoring existed. Read `all_prompt_lens`.
    prompt_lens: tuple[int, ...] = ()
    # --verify: rows whose label is not certain under `dtype` hold fp32's label (checked in
    # fp32; rows whose label changed re-scored in fp32: inference_jobs/runner.verify_rows);
    # False in records written before it existed.
    verify: bool = False
    # --offset: the scored window is tokens [offset, offset + prompt_len + cont_len) of each
    # row (0: the row's start); data_fingerprint then names the offset too (plan.plan_shard).
    offset: int = 0
    # --windows-per-row: W > 1 scores W consecutive windows of each row as sequences
    # seq_idx = row * W + w (inference_jobs.data.RowWindows); data_fingerprint names it.
    windows_per_row: int = 1

    def __post_init__(self) -> None:
        lens = tuple(sorted({int(k) for k in self.prompt_lens}))
        if lens and lens[-1] != self.prompt_len:
            raise ValueError(f"prompt_lens {list(lens)} must end with prompt_len {self.prompt_len}")
        object.__setattr__(self, "prompt_lens", () if len(lens) <= 1 else lens)

    @property
    def all_prompt_lens(self) -> tuple[int, ...]:
        """Every prompt length this run scores, ascending (the last is prompt_len)."""
        return self.prompt_lens or (self.prompt_len,)

    @property
    def seq_start(self) -> int:
        return self.bounds[0]

    @property
    def seq_end(self) -> int:
        return self.bounds[1]

    @property
    def bounds(self) -> tuple[int, int]:
        """[lo, hi) of this shard inside seq_range (memwh.core.contract.shard_bounds)."""
        return contract.shard_bounds(*self.seq_range, self.shard, self.num_shards)

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON form (field order; tuples as lists)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def manifest_fields(self) -> dict[str, Any]:
        """What this record writes into a manifest: the flat contract keys ingest reads (the
        manifest's ``model_path`` is the --model as given, so the resolved one is
        ``resolved_model_path``), the shard's bounds, and the ``settings`` block itself."""
        d = self.to_dict()
        flat = {k: v for k, v in d.items() if k != "model_path"}
        flat["prompt_lens"] = list(self.all_prompt_lens)
        return {
            **flat,
            "resolved_model_path": self.model_path,
            "seq_start": self.seq_start,
            "seq_end": self.seq_end,
            MANIFEST_KEY: d,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunSettings:
        """Inverse of to_dict; unknown keys are ignored, missing ones take the field default."""
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        for key in ("seq_range", "prompt_lens"):
            if kw.get(key) is not None:
                kw[key] = tuple(int(x) for x in kw[key])
        return cls(**kw)

    @classmethod
    def from_manifest(cls, m: Mapping[str, Any]) -> RunSettings:
        """The settings a manifest records: its ``settings`` block, else (manifests written
        before the block existed) rebuilt from the flat keys."""
        block = m.get(MANIFEST_KEY)
        if isinstance(block, Mapping):
            return cls.from_dict(block)
        flat = {**OLD_MANIFEST_DEFAULTS, **m}
        seq_range = flat.get("seq_range")
        if seq_range is None and int(flat.get("num_shards", 1)) == 1:
            seq_range = (flat["seq_start"], flat["seq_end"])
        return cls.from_dict(
            {
                **flat,
                "model_path": flat.get("resolved_model_path") or flat.get("model_path"),
                "seq_range": seq_range or (flat["seq_start"], flat["seq_end"]),
            }
        )

    def with_resolved(self, **values: Any) -> RunSettings:
        """A copy with late-known values filled in (dtype, commit, batch size)."""
        return replace(self, **values)

    def differences(self, recorded: RunSettings, *, completion: bool = True) -> list[Difference]:
        """Settings where `recorded` (a finished or partial shard) differs from this request.

        completion=True skips resume-only fields; a late field that is None here is skipped.
        """
        out = []
        for f in fields(self):
            if completion and not f.metadata.get("completion", True):
                continue
            want, have = getattr(self, f.name), getattr(recorded, f.name)
            if f.metadata.get("late") and want is None:
                continue
            if _norm(want) != _norm(have):
                out.append(Difference(f.name, have, want))
        return out


# Values older manifests did not record but implied.
OLD_MANIFEST_DEFAULTS: dict[str, Any] = {"save_generations": False}


@dataclass(frozen=True)
class Difference:
    """One setting where a recorded shard differs from the request."""

    name: str
    recorded: Any
    requested: Any

    def __str__(self) -> str:
        sep = ":" if self.name == "seq_range" else ","  # ranges as start:end, lists as a,b,c
        return f"{self.name} {_show(self.recorded, sep)} -> {_show(self.requested, sep)}"


def describe(diffs: list[Difference]) -> str:
    """'data_fingerprint parquet-1 -> parquet-2, dtype float32 -> bfloat16' (old -> new)."""
    return ", ".join(str(d) for d in diffs)


def _norm(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _show(v: Any, sep: str) -> str:
    if isinstance(v, list | tuple):
        return sep.join(str(x) for x in v)
    return "none" if v is None else str(v)


WAY_OUT = "score into a separate unit with --name, into another --out, or replace it with --force"


@dataclass(frozen=True)
class Completion:
    """Where a requested shard stands: missing, done (same settings) or conflict (other ones)."""

    state: str  # "missing" | "done" | "conflict"
    manifest_path: Path
    differences: tuple[Difference, ...] = ()
    manifest: Mapping[str, Any] | None = None

    def message(self, way_out: str = WAY_OUT) -> str:
        """One line for users: which shard, what differs (old -> new), how to proceed."""
        return (
            f"{self.manifest_path}: shard complete with other settings "
            f"({describe(list(self.differences))}); {way_out}"
        )


def completion(root: str | os.PathLike, request: RunSettings) -> Completion:
    """Compare the request with the shard's manifest under ROOT (the only completion marker).

    A manifest that is missing, unreadable or whose Parquet file is gone: "missing" (the shard
    is incomplete and will be written again)."""
    pq_path, man_path = contract.shard_paths(
        root, request.model, request.revision, request.shard, request.num_shards
    )
    if not (man_path.is_file() and pq_path.is_file()):
        return Completion("missing", man_path)
    try:
        m = contract.read_manifest(man_path)
        recorded = RunSettings.from_manifest(m)
    except (contract.ContractError, KeyError, TypeError, ValueError):
        return Completion("missing", man_path)
    diffs = tuple(request.differences(recorded))
    return Completion("conflict" if diffs else "done", man_path, diffs, m)


def parse_prompt_lens(value: int | str | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    """``32``, ``"32,64,128"``, ``"25:100:25"`` (start:stop:step, stop included) or a list ->
    ascending unique prompt lengths. ValueError with a one-line reason otherwise."""
    if isinstance(value, int):
        lens = [value]
    elif isinstance(value, str):
        text = value.replace(" ", "")
        try:
            if ":" in text:
                parts = [int(x) for x in text.split(":")]
                if len(parts) != 3 or parts[2] < 1:
                    raise ValueError
                lens = list(range(parts[0], parts[1] + 1, parts[2]))
            else:
                lens = [int(x) for x in text.split(",") if x]
        except ValueError:
            raise ValueError(
                f"--prompt-len {value!r}: use a number, a list like 32,64,128, "
                "or start:stop:step like 25:100:25"
            ) from None
    else:
        lens = [int(x) for x in value]
    if not lens or min(lens) < 1:
        raise ValueError(f"--prompt-len {value!r}: prompt lengths must be >= 1")
    return tuple(sorted(set(lens)))
