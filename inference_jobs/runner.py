"""`score()`: one shard of one (model, revision) over a data source -> Parquet + manifest.

Crash safety and resume
-----------------------
Rows of a shard are processed in fixed batches (batch k = the k-th slice of ``batch_size``
sequence indices of the shard). Finished batches are flushed at least every ``FLUSH_SECONDS``
(and on preemption) to ``<unit>/.part-XXXXX-of-YYYYY.partial/batches-<first>-<last>.parquet``,
each written atomically, next to a ``settings.json`` describing the run. A rerun with the same
settings skips the flushed batches; batch boundaries do not move, so the final file has exactly
the rows (and bit-identical values) of an uninterrupted run. Different settings discard the
partial folder. The final Parquet file is written atomically, then the manifest (the completion
marker), then the partial folder is removed. SIGUSR1/SIGTERM finish the current batch, flush,
and return status "preempted".
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console

from memwh.core import contract
from memwh.core.errors import MemwhError

from . import data as data_mod
from . import models, provenance
from .scoring import MIN_K_FRACTION, BatchScores, score_batch

FLUSH_SECONDS = float(os.environ.get("MEMWH_FLUSH_SECONDS", "30"))  # max work lost by a hard kill
PREEMPT_SIGNALS = ("SIGUSR1", "SIGTERM")
MODES = ("fast", "generate")
SETTINGS_KEYS = (
    "model_path", "model", "revision", "mode", "prompt_len", "cont_len", "suppress_eos",
    "data_fingerprint", "seq_start", "seq_end", "batch_size", "dtype", "save_generations",
)  # fmt: skip


@dataclass
class ShardResult:
    """Outcome of one `score()` call."""

    status: str  # "done" | "skipped" | "preempted"
    parquet: Path
    manifest: Path
    n_rows: int
    n_exact: int
    seconds: float


def _parse_dtype_name(torch_dtype: Any) -> str:
    return str(torch_dtype).removeprefix("torch.")


def auto_batch_size(model: Any, device: str, prompt_len: int, cont_len: int) -> int:
    """Power of two fitting a fixed memory budget (deterministic per device, so resumes match).

    Per sequence: fp32 logits of cont_len positions (x4 for log-softmax + processed copy),
    KV cache and transient activations. CPU: 1 GiB budget, capped at 256 (CPU throughput is flat
    beyond that). GPU: 40% of the card's total memory, capped at 1024 (Pythia's eval batch).
    """
    import torch

    cfg = model.config
    vocab = model.get_input_embeddings().num_embeddings
    hidden = int(getattr(cfg, "hidden_size", 1024))
    layers = int(getattr(cfg, "num_hidden_layers", 24))
    n = prompt_len + cont_len
    elem = next(model.parameters()).element_size()
    per_seq = cont_len * vocab * 4 * 4 + n * hidden * layers * 2 * elem + n * hidden * 16 * 4
    if device.startswith("cuda"):
        budget, cap = (
            0.4 * torch.cuda.get_device_properties(torch.device(device)).total_memory,
            1024,
        )
    else:
        budget, cap = float(1 << 30), 256
    bs = max(1, int(budget // per_seq))
    return int(min(cap, 1 << (bs.bit_length() - 1)))


def _table(seq_idx: np.ndarray, s: BatchScores, with_generations: bool) -> pa.Table:
    n = len(seq_idx)
    cols: list[pa.Array] = [
        pa.array(seq_idx, pa.int64()),
        pa.array(s.prefix_match_len, pa.int16()),
        pa.array(s.exact_match, pa.bool_()),
        pa.array(s.memorization_score, pa.float32())
        if s.memorization_score is not None
        else pa.nulls(n, pa.float32()),
        pa.array(s.tf_token_accuracy, pa.float32()),
        pa.array(s.loss, pa.float32()),
        pa.array(s.min_k_logprob, pa.float32()),
        pa.array(s.zlib_ratio, pa.float32())
        if s.zlib_ratio is not None
        else pa.nulls(n, pa.float32()),
    ]
    schema = contract.SCORE_SCHEMA
    if with_generations:
        gen = s.generated if s.generated is not None else np.zeros((n, 0), np.int32)
        cols.append(pa.array(list(gen), contract.GENERATIONS_FIELD.type))
        schema = schema.append(contract.GENERATIONS_FIELD)
    return pa.Table.from_arrays(cols, schema=schema)


def _write_partial(folder: Path, first: int, last: int, tables: list[pa.Table]) -> None:
    buf = io.BytesIO()
    pq.write_table(pa.concat_tables(tables), buf, compression="zstd")
    contract.atomic_write_bytes(folder / f"batches-{first:06d}-{last:06d}.parquet", buf.getvalue())


def _load_partial(
    folder: Path, settings: dict[str, Any], console: Console | None
) -> dict[int, Path]:
    """Batch index -> file for a matching partial folder; otherwise wipe it and start clean."""
    sfile = folder / "settings.json"
    if folder.is_dir():
        try:
            old = json.loads(sfile.read_text())
        except (OSError, json.JSONDecodeError):
            old = None
        if old is not None and all(old.get(k) == settings[k] for k in SETTINGS_KEYS):
            done: dict[int, Path] = {}
            for f in sorted(folder.glob("batches-*-*.parquet")):
                a, b = (int(x) for x in f.stem.split("-")[1:3])
                for k in range(a, b + 1):
                    done[k] = f
            settings["started_at"] = old.get("started_at", settings["started_at"])
            settings["attempts"] = int(old.get("attempts", 1)) + 1
            contract.atomic_write_bytes(sfile, json.dumps(settings, indent=2).encode())
            return done
        if console:
            console.print(f"[yellow]discarding partial results in {folder} (different settings)[/]")
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    contract.atomic_write_bytes(sfile, json.dumps(settings, indent=2).encode())
    return {}


class _Preempt:
    """SIGUSR1/SIGTERM -> set a flag; the loop finishes the current batch and stops."""

    def __init__(self, console: Console | None) -> None:
        self.flag = False
        self.signame = ""
        self._old: dict[int, Any] = {}
        self._console = console

    def _handler(self, signum: int, frame: Any) -> None:
        self.flag = True
        self.signame = signal.Signals(signum).name
        if self._console:
            self._console.print(
                f"[yellow]{self.signame} received: finishing the current batch, then stopping[/]"
            )

    def __enter__(self) -> _Preempt:
        if threading.current_thread() is threading.main_thread():
            for name in PREEMPT_SIGNALS:
                sig = getattr(signal, name, None)
                if sig is not None:
                    self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def _parse_existing(manifest_path: Path) -> tuple[int, int, dict[str, Any]]:
    try:
        m = contract.read_manifest(manifest_path)
        return int(m.get("n_rows", 0)), int(m.get("n_exact") or 0), m
    except contract.ContractError:
        return 0, 0, {}


def score(
    model: str,
    data: str,
    out: str | Path,
    *,
    revision: str | None = None,
    name: str | None = None,
    prompt_len: int = 32,
    cont_len: int = 32,
    mode: str = "fast",
    suppress_eos: bool = False,
    batch_size: int | None = None,
    dtype: str = "auto",
    device: str = "auto",
    seq_range: tuple[int, int] | None = None,
    shard: int = 0,
    num_shards: int = 1,
    force: bool = False,
    save_generations: bool = False,
    save_windows: bool = True,
    progress: bool = True,
    role: str | None = None,
    variant_of: str | None = None,
    method: str | None = None,
    method_params: str | dict | None = None,
) -> ShardResult:
    """Score one shard and write its Parquet file + manifest under `out` (see module docstring).

    `role`, `variant_of`, `method`, `method_params` declare the unit's place in a controlled
    experiment (contract.ROLES); they go into the manifest unchanged by the scoring."""
    t0 = time.perf_counter()
    console = Console(stderr=True) if progress else None
    if mode not in MODES:
        raise MemwhError(f"--mode {mode}: use fast or generate")
    if prompt_len < 1 or cont_len < 1:
        raise MemwhError("--prompt-len and --cont-len must be >= 1")
    if save_generations and mode != "generate":
        raise MemwhError(
            "--save-generations needs --mode generate (fast mode does not generate tokens)"
        )
    if batch_size is not None and batch_size < 1:
        raise MemwhError("--batch-size must be >= 1")
    if num_shards < 1 or not (0 <= shard < num_shards):
        raise MemwhError(f"--shard {shard} --num-shards {num_shards}: need 0 <= shard < num_shards")
    if Path(out).exists() and not Path(out).is_dir():
        raise MemwhError(f"--out {out}: is a file; pass a folder (created when missing)")
    if seq_range is not None and not 0 <= seq_range[0] < seq_range[1]:
        raise MemwhError(f"--seq-range {seq_range[0]}:{seq_range[1]}: START must be >= 0 and < END")

    role_fields = {"role": role, "variant_of": variant_of, "method": method}
    role_fields["method_params"] = method_params
    try:
        contract.check_role_fields(role_fields)  # before loading anything
    except contract.ContractError as e:
        raise MemwhError(str(e)) from None
    ref = models.resolve_model(model, revision, name)
    try:
        pq_path, man_path = contract.shard_paths(out, ref.name, ref.revision, shard, num_shards)
        role_fields = contract.check_role_fields(role_fields, model=ref.name, revision=ref.revision)
    except contract.ContractError as e:
        raise MemwhError(str(e)) from None
    if man_path.is_file() and pq_path.is_file() and not force:
        n_rows, n_exact, old = _parse_existing(man_path)
        if console:
            want = {
                "mode": mode,
                "prompt_len": prompt_len,
                "cont_len": cont_len,
                "suppress_eos": suppress_eos,
            }
            diff = ", ".join(
                f"{k}={old.get(k)!r} there" for k, v in want.items() if old.get(k) != v
            )
            hint = (
                f" but with {diff}: use --name for a separate unit or --force to replace"
                if diff
                else "; use --force to redo"
            )
            console.print(f"skipped: {man_path} exists (shard complete{hint})", soft_wrap=True)
        if save_windows:  # shards scored before windows existed get them on a rerun
            _backfill_windows(out, data, ref, old)
        return ShardResult("skipped", pq_path, man_path, n_rows, n_exact, time.perf_counter() - t0)
    partial_dir = pq_path.parent / f".{contract.part_stem(shard, num_shards)}.partial"
    if force:
        man_path.unlink(missing_ok=True)  # the old shard is incomplete from here on
        shutil.rmtree(partial_dir, ignore_errors=True)

    # Data first (cheap, catches most input errors before loading the model).
    tok_cache: dict[str, Any] = {}

    def tokenizer_loader() -> Any:
        if "tok" not in tok_cache:
            tok_cache["tok"] = models.load_tokenizer(ref)
            if tok_cache["tok"] is None:
                raise MemwhError(
                    f"{ref.load_path}: no tokenizer to tokenize text data; use a token table"
                )
        return tok_cache["tok"]

    source = data_mod.open_source(data, tokenizer_loader)
    d_lo, d_hi = source.index_range()
    if seq_range is not None:
        start, end = seq_range
        if start >= end or start < d_lo or end > d_hi:
            raise MemwhError(
                f"--seq-range {start}:{end} is outside the data ({source.description} covers {d_lo}:{d_hi})"
            )
    else:
        start, end = d_lo, d_hi
    lo, hi = contract.shard_bounds(start, end, shard, num_shards)
    indices = source.indices_in(lo, hi)
    if not len(indices) and not len(source.indices_in(start, end)):  # a 0-row unit
        raise MemwhError(
            f"--seq-range {start}:{end}: {source.description} has no sequence in that range "
            "(a unit without rows cannot be scored); pick a range that holds sequences"
        )
    need = prompt_len + cont_len

    dev = models.pick_device(device)
    tdtype = models.pick_dtype(dtype, dev)
    import torch

    net = models.load_model(ref, tdtype, dev)
    tokenizer = tok_cache.get("tok") or models.load_tokenizer(ref)
    vocab = net.get_input_embeddings().num_embeddings
    max_pos = getattr(net.config, "max_position_embeddings", None)
    if max_pos is not None and need > max_pos:
        raise MemwhError(
            f"--prompt-len + --cont-len = {need} exceeds the model's max_position_embeddings {max_pos}"
        )
    eos = models.eos_ids(net)
    if suppress_eos and not eos:
        raise MemwhError(
            f"{ref.load_path}: --suppress-eos but the model config has no eos_token_id"
        )
    suppress = eos if suppress_eos else []
    bs = batch_size or auto_batch_size(net, dev, prompt_len, cont_len)
    n_params, non_emb = models.count_params(net)

    run_id = uuid.uuid4().hex
    settings: dict[str, Any] = {
        "model_path": ref.load_path, "model": ref.name, "revision": ref.revision, "mode": mode,
        "prompt_len": prompt_len, "cont_len": cont_len, "suppress_eos": suppress_eos,
        "data_fingerprint": source.fingerprint, "seq_start": lo, "seq_end": hi, "batch_size": bs,
        "dtype": _parse_dtype_name(tdtype), "save_generations": save_generations,
        "started_at": provenance.utc_now(), "attempts": 1,
    }  # fmt: skip
    done = _load_partial(partial_dir, settings, console)
    n_batches = (len(indices) + bs - 1) // bs
    todo = [k for k in range(n_batches) if k not in done]
    n_resumed = sum(min(bs, len(indices) - k * bs) for k in done if k < n_batches)
    if console and done:
        console.print(
            f"resuming: {len(done)} of {n_batches} batches already scored in {partial_dir.name}"
        )

    pending: list[pa.Table] = []
    pending_first = -1
    last_flush = time.perf_counter()
    preempted = False
    scored_now = 0
    t_loop = time.perf_counter()

    def flush(last_k: int) -> None:
        nonlocal pending, pending_first, last_flush
        if pending:
            _write_partial(partial_dir, pending_first, last_k, pending)
        pending, pending_first, last_flush = [], -1, time.perf_counter()

    bar = _progress(console)
    task = (
        bar.add_task(
            f"{ref.name}@{ref.revision} {mode}", total=len(indices), completed=n_resumed, rate=""
        )
        if bar
        else None
    )
    # inference_mode is scoped: score() must not leave autograd switched off for its caller.
    with torch.inference_mode(), _Preempt(console) as pre, bar or _Null():
        prev_k = -2
        try:
            for k in todo:
                if pending and k != prev_k + 1:  # keep each partial file a contiguous batch range
                    flush(prev_k)
                idx = indices[k * bs : (k + 1) * bs]
                toks = source.read(idx, need)
                _check_vocab(toks, idx, vocab, source.description)
                s = score_batch(
                    net, toks, prompt_len, cont_len, mode=mode, suppress_ids=suppress,
                    tokenizer=tokenizer, device=dev, save_generations=save_generations,
                )  # fmt: skip
                if pending_first < 0:
                    pending_first = k
                pending.append(_table(idx, s, save_generations))
                prev_k = k
                scored_now += len(idx)
                if bar is not None and task is not None:
                    rate = scored_now / max(time.perf_counter() - t_loop, 1e-9)
                    bar.update(task, advance=len(idx), rate=f"{rate:,.1f} seq/s")
                if pre.flag:
                    preempted = True
                    break
                if time.perf_counter() - last_flush >= FLUSH_SECONDS:
                    flush(k)
        except KeyboardInterrupt:  # keep finished batches, then stop as the user asked
            flush(prev_k)
            raise
        flush(prev_k)

    if preempted:
        secs = time.perf_counter() - t0
        n_have = sum(pq.ParquetFile(f).metadata.num_rows for f in set(_partial_files(partial_dir)))
        if console:
            console.print(
                f"preempted ({pre.signame}): {n_have}/{len(indices)} rows saved in {partial_dir}; rerun to resume",
                soft_wrap=True,
            )
        return ShardResult("preempted", pq_path, man_path, n_have, 0, secs)

    # Assemble: all partial files, sorted by seq_idx.
    files = sorted(set(_partial_files(partial_dir)))
    tables = [pq.read_table(f) for f in files]
    schema = (
        contract.SCORE_SCHEMA.append(contract.GENERATIONS_FIELD)
        if save_generations
        else contract.SCORE_SCHEMA
    )
    table = pa.concat_tables(tables).cast(schema) if tables else schema.empty_table()
    table = table.sort_by("seq_idx")
    if table.num_rows != len(indices) or not np.array_equal(
        table.column("seq_idx").to_numpy(), indices
    ):
        shutil.rmtree(partial_dir, ignore_errors=True)
        raise MemwhError(
            f"{partial_dir}: partial results do not cover the shard; removed them, rerun the shard"
        )
    n_exact = int(np.sum(table.column("exact_match").to_numpy(zero_copy_only=False)))

    # Sequence metadata (duplicates / is_canary) once per data fingerprint.
    meta = source.sequence_meta()
    if meta is not None:
        mpath = contract.sequences_meta_path(out, source.fingerprint)
        if not mpath.is_file():
            buf = io.BytesIO()
            pq.write_table(meta.cast(contract.SEQUENCE_META_SCHEMA), buf, compression="zstd")
            contract.atomic_write_bytes(mpath, buf.getvalue())

    if save_windows:
        _write_windows(out, source, indices, need, lo, hi)

    finished = provenance.utc_now()
    wall = time.perf_counter() - t0
    manifest: dict[str, Any] = {
        "contract_version": contract.CONTRACT_VERSION,
        "run_id": run_id,
        "model": ref.name,
        "model_path": ref.spec,
        "revision": ref.revision,
        "shard": shard,
        "num_shards": num_shards,
        "seq_start": lo,
        "seq_end": hi,
        "n_rows": table.num_rows,
        "prompt_len": prompt_len,
        "cont_len": cont_len,
        "mode": mode,
        "suppress_eos": suppress_eos,
        "parquet_file": pq_path.name,
        "started_at": settings["started_at"],
        "finished_at": finished,
        "step": contract.parse_step(ref.revision),
        "commit_hash": ref.commit_hash,
        "n_params": n_params,
        "non_embedding_params": non_emb,
        "family": models.guess_family(ref.name),
        "dtype": _parse_dtype_name(tdtype),
        "device": models.device_name(dev),
        "batch_size": bs,
        "eos_token_id": eos[0] if len(eos) == 1 else (eos or None),
        "min_k_fraction": MIN_K_FRACTION,
        "data_source": str(data),
        "data_fingerprint": source.fingerprint,
        "n_exact": n_exact,
        **provenance.run_environment(),
        "versions": provenance.versions(),
        "git_sha": provenance.git_sha(),
        "wall_seconds": round(wall, 3),
        # extras (not in the contract lists): how the run got here
        "resolved_model_path": ref.load_path,
        "seq_range": [start, end],
        "attempts": settings["attempts"],
        "n_resumed_rows": n_resumed,
        "zlib_definition": "loss / len(zlib.compress(utf8(tokenizer.decode(continuation))))",
    }
    manifest.update(
        ref.suite_meta
    )  # suite facts win over what we measured (same numbers for n_params)
    if role_fields["method_params"] is not None:  # an object in the manifest, not a string
        role_fields["method_params"] = json.loads(role_fields["method_params"])
    manifest.update({k: v for k, v in role_fields.items() if v is not None})
    digest = contract.write_scores_parquet(table, pq_path, metadata=manifest)
    manifest["parquet_sha256"] = digest
    contract.write_manifest(man_path, manifest)
    shutil.rmtree(partial_dir, ignore_errors=True)
    secs = time.perf_counter() - t0
    if console:
        rate = scored_now / max(time.perf_counter() - t_loop, 1e-9)
        console.print(
            f"done: {table.num_rows} rows, {n_exact} memorized (exact {cont_len}-token match), "
            f"{secs:.1f}s ({rate:,.1f} seq/s) -> {pq_path}",
            soft_wrap=True,
        )
    return ShardResult("done", pq_path, man_path, table.num_rows, n_exact, secs)


WINDOW_CHUNK = 1 << 16


def _backfill_windows(out: str | Path, data: str, ref: Any, m: dict[str, Any]) -> None:
    """Write a complete shard's windows file when missing (same data fingerprint only)."""
    try:
        width = int(m["prompt_len"]) + int(m["cont_len"])
        lo, hi, fp = int(m["seq_start"]), int(m["seq_end"]), m["data_fingerprint"]
        if not fp or contract.windows_path(out, fp, width, lo, hi).is_file():
            return
    except (KeyError, TypeError, ValueError, contract.ContractError):
        return
    source = data_mod.open_source(data, lambda: models.load_tokenizer(ref))
    if source.fingerprint == fp:
        _write_windows(out, source, source.indices_in(lo, hi), width, lo, hi)


def _write_windows(
    out: str | Path, source: Any, indices: np.ndarray, width: int, lo: int, hi: int
) -> None:
    """The scored token windows of [lo, hi), once per dataset range (any unit may write it)."""
    path = contract.windows_path(out, source.fingerprint, width, lo, hi)
    if path.is_file():
        return
    chunks = (
        (indices[i : i + WINDOW_CHUNK], source.read(indices[i : i + WINDOW_CHUNK], width))
        for i in range(0, len(indices), WINDOW_CHUNK)
    )
    contract.write_windows(path, chunks)


def _partial_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("batches-*-*.parquet")) if folder.is_dir() else []


def _check_vocab(toks: np.ndarray, idx: np.ndarray, vocab: int, desc: str) -> None:
    bad = (toks < 0) | (toks >= vocab)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise MemwhError(
            f"{desc}: sequence {int(idx[r])} has token id {int(toks[r, c])} outside the model's vocabulary "
            f"(0..{vocab - 1}); was the data tokenized for another model?"
        )


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _progress(console: Console | None) -> Any:
    if console is None:
        return None
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
