"""`score()`: one shard of one (model, revision) over a data source -> Parquet + manifest.

Crash safety and resume
-----------------------
Rows of a shard are processed in fixed batches (batch k = the k-th slice of ``batch_size``
sequence indices of the shard). Finished batches are flushed at least every ``FLUSH_SECONDS``
(and on preemption) to ``<unit>/.part-XXXXX-of-YYYYY.partial/batches-<first>-<last>.parquet``,
each written atomically, next to a ``settings.json`` holding the run's settings record
(memwh.core.run_settings.RunSettings, built by plan.plan_shard). A rerun with the same
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
from memwh.core.config import MEMORIZED_MIN_TOKENS
from memwh.core.errors import MemwhError
from memwh.core.run_settings import RunSettings

from . import certify, models, provenance, scoring
from . import data as data_mod
from .metadata import ModelMeta
from .plan import MODES, ShardPlan, plan_shard, window_fingerprint
from .scoring import MIN_K_FRACTION, BatchScores, concat_scores, score_batch

__all__ = ["MODES", "ModelMeta", "ShardResult", "auto_batch_size", "score"]

FLUSH_SECONDS = float(os.environ.get("MEMWH_FLUSH_SECONDS", "30"))  # max work lost by a hard kill
WINDOW_CHUNK = 1 << 16  # sequences per token-window write (bounded memory)
PREEMPT_SIGNALS = ("SIGUSR1", "SIGTERM")


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


def auto_batch_size(
    model: Any, device: str, prompt_len: int, cont_len: int, first_prompt_len: int | None = None
) -> int:
    """Power of two fitting a fixed memory budget (deterministic per device, so resumes match).

    Per sequence: fp32 logits of the kept positions (cont_len, plus prompt_len -
    first_prompt_len for multi-prompt runs; x4 for logsumexp + processed copy),
    KV cache and transient activations. CPU: 1 GiB budget, capped at 256 (CPU throughput is flat
    beyond that). GPU: 80% of the memory free after loading the model, capped at 1024 (Pythia's
    eval batch); out-of-memory halves it while scoring.
    """
    import torch

    cfg = model.config
    vocab = model.get_input_embeddings().num_embeddings
    hidden = int(getattr(cfg, "hidden_size", 1024))
    layers = int(getattr(cfg, "num_hidden_layers", 24))
    n = prompt_len + cont_len
    kept = n - (prompt_len if first_prompt_len is None else first_prompt_len)
    elem = next(model.parameters()).element_size()
    per_seq = kept * vocab * 4 * 4 + n * hidden * layers * 2 * elem + n * hidden * 16 * 4
    if device.startswith("cuda"):
        # what is free once the weights are loaded (a 12B model leaves little of the card);
        # an estimate that is still too large is halved on out-of-memory (_score_fitting)
        budget, cap = 0.8 * torch.cuda.mem_get_info(torch.device(device))[0], 1024
    else:
        budget, cap = float(1 << 30), 256
    bs = max(1, int(budget // per_seq))
    return int(min(cap, 1 << (bs.bit_length() - 1)))


def _table(
    seq_idx: np.ndarray, s: BatchScores, with_generations: bool, verified: bool = False
) -> pa.Table:
    """Rows of one batch: (seq_idx, prompt_len) sequence-major, as score_batch returns them;
    `verified`: they are fp32 re-scores of uncertain rows (--verify)."""
    n = len(s.prompt_len)
    cols: list[pa.Array] = [
        pa.array(np.repeat(seq_idx, n // max(len(seq_idx), 1)), pa.int64()),
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
        pa.array(s.prompt_len, pa.int16()),
        pa.array(s.label_margin, pa.float32()),
        pa.array(s.label_certain, pa.bool_()),
        pa.array(np.full(n, verified), pa.bool_()),
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


@dataclass
class _Resume:
    """Batches already flushed by earlier attempts with exactly these settings."""

    done: dict[int, Path]  # batch index -> file holding it
    started_at: str
    attempts: int
    compute_batch_size: int | None = None  # found by an earlier attempt (halved on OOM)


def _open_partial(folder: Path, settings: RunSettings, console: Console | None) -> _Resume:
    """Reuse a partial folder whose settings.json equals `settings` (batch size included);
    otherwise wipe it and start clean. settings.json = settings.to_dict() + attempt info."""
    sfile = folder / "settings.json"
    started, attempts, done, compute = provenance.utc_now(), 1, {}, None
    if folder.is_dir():
        try:
            old = json.loads(sfile.read_text())
            same = RunSettings.from_dict(old) == settings
        except (OSError, ValueError, TypeError, KeyError):
            old, same = {}, False
        files = sorted(folder.glob("batches-*-*.parquet"))
        if same and not all(
            set(contract.SCORE_SCHEMA.names) <= set(pq.ParquetFile(f).schema_arrow.names)
            for f in files
        ):  # flushed by an older memwh: rows lack prompt_len (v2) or label certainty (v3)
            same = False
        if same:
            for f in files:
                a, b = (int(x) for x in f.stem.split("-")[1:3])
                for k in range(a, b + 1):
                    done[k] = f
            started = old.get("started_at", started)
            attempts = int(old.get("attempts", 1)) + 1
            compute = old.get("compute_batch_size")
        else:
            if console:
                console.print(
                    f"[yellow]discarding partial results in {folder} (different settings)[/]"
                )
            shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    record = {**settings.to_dict(), "started_at": started, "attempts": attempts}
    if compute is not None:
        record["compute_batch_size"] = compute
    contract.atomic_write_bytes(sfile, json.dumps(record, indent=2).encode())
    return _Resume(done, started, attempts, compute)


def _record_compute_batch_size(folder: Path, size: int) -> None:
    """Remember the batch size that fits (settings.json), so a resume computes as this run."""
    sfile = folder / "settings.json"
    record = json.loads(sfile.read_text())
    record["compute_batch_size"] = size
    contract.atomic_write_bytes(sfile, json.dumps(record, indent=2).encode())


def _score_fitting(
    m: _Loaded,
    toks: np.ndarray,
    s: RunSettings,
    fit: _Fit,
    folder: Path,
    console: Console | None,
) -> BatchScores:
    """score_batch over slices of `fit.size` sequences; on out-of-memory halve the size, free
    the cache and retry (down to 1), recording the size that fits for resumes. The flushed
    batches (resume units) keep their boundaries whatever size computes them."""
    import torch

    def one(part: np.ndarray) -> BatchScores:
        return score_batch(
            m.net, part, s.all_prompt_lens, s.cont_len, mode=s.mode, suppress_ids=m.suppress,
            tokenizer=m.tokenizer, device=m.device, save_generations=s.save_generations,
        )  # fmt: skip

    while True:
        try:
            return concat_scores(
                [one(toks[i : i + fit.size]) for i in range(0, len(toks), fit.size)]
            )
        except torch.OutOfMemoryError:
            if m.device.startswith("cuda"):
                torch.cuda.empty_cache()
            if fit.size == 1:
                raise MemwhError(
                    f"out of memory scoring a single sequence on {m.device}; use a device with "
                    "more memory, --dtype bf16/fp16, or shorter --prompt-len/--cont-len"
                ) from None
            old, fit.size = fit.size, max(1, fit.size // 2)
            fit.halvings += 1
            _record_compute_batch_size(folder, fit.size)
            if console:
                console.print(
                    f"[yellow]out of memory at batch size {old}: retrying with {fit.size}[/]"
                )


@dataclass
class _Fit:
    """The batch size that computes (starts at the shard's batch size; halved on OOM)."""

    size: int
    halvings: int = 0


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


@dataclass
class _Loaded:
    """The model and what scoring needs from it."""

    net: Any
    tokenizer: Any
    device: str
    vocab: int
    eos: list[int]
    suppress: list[int]
    n_params: int
    non_embedding_params: int


def _load(plan: ShardPlan, device: str, torch_dtype: Any) -> _Loaded:
    """Load the model onto the device and check it can score these settings."""
    s, ref = plan.settings, plan.ref
    net = models.load_model(ref, torch_dtype, device)
    need = s.prompt_len + s.cont_len
    max_pos = getattr(net.config, "max_position_embeddings", None)
    if max_pos is not None and need > max_pos:
        raise MemwhError(
            f"--prompt-len + --cont-len = {need} exceeds the model's max_position_embeddings {max_pos}"
        )
    eos = models.eos_ids(net)
    if s.suppress_eos and not eos:
        raise MemwhError(
            f"{ref.load_path}: --suppress-eos but the model config has no eos_token_id"
        )
    n_params, non_emb = models.count_params(net)
    return _Loaded(
        net=net, tokenizer=plan.tokenizer(), device=device,
        vocab=net.get_input_embeddings().num_embeddings, eos=eos,
        suppress=eos if s.suppress_eos else [], n_params=n_params, non_embedding_params=non_emb,
    )  # fmt: skip


@dataclass
class _Loop:
    """What the batch loop did."""

    preempted: bool
    signame: str
    scored_now: int
    seconds: float
    fit: _Fit

    @property
    def rate(self) -> float:
        return self.scored_now / max(self.seconds, 1e-9)


def _score_batches(
    plan: ShardPlan,
    m: _Loaded,
    indices: np.ndarray,
    resume: _Resume,
    console: Console | None,
) -> _Loop:
    """Score the batches not flushed yet, flushing to the partial folder as it goes."""
    import torch

    s, folder = plan.settings, plan.partial_dir
    bs = int(s.batch_size or 1)
    need = s.prompt_len + s.cont_len
    n_batches = (len(indices) + bs - 1) // bs
    todo = [k for k in range(n_batches) if k not in resume.done]
    n_resumed = _n_resumed(resume, len(indices), bs)
    if console and resume.done:
        console.print(
            f"resuming: {len(resume.done)} of {n_batches} batches already scored in {folder.name}"
        )
    pending: list[pa.Table] = []
    pending_first = -1
    last_flush = time.perf_counter()
    preempted, scored_now = False, 0
    t_loop = time.perf_counter()
    fit = _Fit(min(bs, int(resume.compute_batch_size or bs)))

    pending_skipped: list[int] = []

    def flush(last_k: int) -> None:
        nonlocal pending, pending_first, last_flush, pending_skipped
        if pending:  # the skip list first: a batch file means its skips are on disk
            name = f"skipped-{pending_first:06d}-{last_k:06d}.json"
            contract.atomic_write_bytes(folder / name, json.dumps(pending_skipped).encode())
            _write_partial(folder, pending_first, last_k, pending)
        pending, pending_first, last_flush = [], -1, time.perf_counter()
        pending_skipped = []

    bar = _progress(console)
    task = (
        bar.add_task(
            f"{s.model}@{s.revision} {s.mode}", total=len(indices), completed=n_resumed, rate=""
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
                batch = indices[k * bs : (k + 1) * bs]
                toks, ok = data_mod.read_window(plan.source, batch, need, s.offset)
                idx, toks = batch[ok], toks[ok]  # rows too short for the window: skipped
                _check_vocab(toks, idx, m.vocab, plan.source.description)
                if pending_first < 0:
                    pending_first = k
                pending_skipped.extend(int(i) for i in batch[~ok])
                pending.append(
                    _table(
                        idx, _score_fitting(m, toks, s, fit, folder, console), s.save_generations
                    )
                    if len(idx)
                    else _schema(s.save_generations).empty_table()
                )
                prev_k = k
                scored_now += len(batch)
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
    return _Loop(preempted, pre.signame, scored_now, time.perf_counter() - t_loop, fit)


def _n_resumed(resume: _Resume, n_indices: int, bs: int) -> int:
    n_batches = (n_indices + bs - 1) // bs
    return sum(min(bs, n_indices - k * bs) for k in resume.done if k < n_batches)


def _schema(with_generations: bool) -> pa.Schema:
    if with_generations:
        return contract.SCORE_SCHEMA.append(contract.GENERATIONS_FIELD)
    return contract.SCORE_SCHEMA


def _skipped(folder: Path) -> np.ndarray:
    """seq_idx of the rows too short for the scored window (recorded with their batches)."""
    out: list[int] = []
    for f in sorted(folder.glob("skipped-*-*.json")) if folder.is_dir() else []:
        out.extend(json.loads(f.read_text()))
    return np.asarray(sorted(set(out)), np.int64)


def _assemble(plan: ShardPlan, indices: np.ndarray) -> pa.Table:
    """All partial files as one table sorted by seq_idx; it must cover the shard exactly
    (every sequence long enough for the window)."""
    folder = plan.partial_dir
    files = sorted(set(_partial_files(folder)))
    tables = [pq.read_table(f) for f in files]
    schema = _schema(plan.settings.save_generations)
    indices = indices[~np.isin(indices, _skipped(folder))]
    table = pa.concat_tables(tables).cast(schema) if tables else schema.empty_table()
    table = table.sort_by([("seq_idx", "ascending"), ("prompt_len", "ascending")])
    lens = np.asarray(plan.settings.all_prompt_lens)
    if (
        table.num_rows != len(indices) * len(lens)
        or not np.array_equal(table.column("seq_idx").to_numpy(), np.repeat(indices, len(lens)))
        or not np.array_equal(table.column("prompt_len").to_numpy(), np.tile(lens, len(indices)))
    ):
        shutil.rmtree(folder, ignore_errors=True)
        raise MemwhError(
            f"{folder}: partial results do not cover the shard; removed them, rerun the shard"
        )
    return table


def verify_rows(
    plan: ShardPlan,
    m: _Loaded,
    table: pa.Table,
    torch_dtype: Any,
    console: Console | None,
    batch_size: int | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    """--verify: check in fp32 the labels that are not certain (certify.py) and keep fp32's
    (``label_verified`` true). Returns the table and the manifest's ``label_verification``
    record (tolerance rule; uncertain, checked, flipped and re-scored counts).

    Two steps, so that certainty costs what it must: (1) one fp32 teacher-forced pass over the
    prompt and the deciding positions only (`scoring.check_labels`) tells whether fp32 gives the
    same matched prefix; where it does, the row keeps its values and takes fp32's certificate
    (label_margin, label_certain); (2) the rows whose label changed are re-scored completely in
    fp32 and replaced (every value fp32's). A flip is a row whose matched-prefix length changed
    (``n_exact_flipped``: whose exact-match label changed).

    The low-precision model is released first and the checkpoint loaded again in fp32 (the
    reference is the stored weights, not an upcast of rounded ones). `batch_size`: what fitted
    the low-precision run; fp32 activations are twice as large, so half of it is used."""
    import torch

    s = plan.settings
    uncertain = ~table.column("label_certain").to_numpy(zero_copy_only=False).astype(bool)
    info: dict[str, Any] = {
        **certify.tolerance_rule(torch_dtype),
        "verify": s.verify,
        "n_uncertain": int(uncertain.sum()),
        "n_checked": 0,
        "n_flipped": 0,
        "n_exact_flipped": 0,
        "n_rescored": 0,
        "seconds": 0.0,
    }
    if not s.verify or not uncertain.any() or torch_dtype == torch.float32:
        if console and uncertain.any() and torch_dtype != torch.float32:
            console.print(
                f"note: {int(uncertain.sum())} labels are not certain under {info['dtype']} "
                "(label_certain false); --verify re-scores them in fp32",
                soft_wrap=True,
            )
        return table, info
    t0 = time.perf_counter()
    m.net = None  # free the low-precision weights before loading fp32 ones
    if m.device.startswith("cuda"):
        torch.cuda.empty_cache()
    net = models.load_model(plan.ref, torch.float32, m.device)
    rows = np.flatnonzero(uncertain)
    seq = table.column("seq_idx").to_numpy()
    plen = table.column("prompt_len").to_numpy()
    pml = table.column("prefix_match_len").to_numpy().astype(np.int64)
    margin = table.column("label_margin").to_numpy(zero_copy_only=False).copy()
    certain = ~uncertain
    bs = max(1, int(batch_size or s.batch_size or 2) // 2)
    need = s.prompt_len + s.cont_len

    def windows(idx: np.ndarray) -> np.ndarray:
        return data_mod.read_window(plan.source, idx, need, s.offset)[0]

    flipped: list[int] = []
    with torch.inference_mode():
        for k in np.unique(plen[rows]).tolist():
            sel = rows[plen[rows] == k]
            sel = sel[np.argsort(pml[sel], kind="stable")]  # similar lengths share a batch
            for i in range(0, len(sel), bs):
                part = sel[i : i + bs]
                chk = scoring.check_labels(
                    net, windows(seq[part]), k, s.cont_len, pml[part],
                    suppress_ids=m.suppress, device=m.device,
                )  # fmt: skip
                margin[part], certain[part] = chk.label_margin, chk.label_certain
                flipped.extend(part[~chk.same].tolist())
    verified = pa.array(uncertain)
    table = table.set_column(table.schema.get_field_index("label_margin"), "label_margin",
                             pa.array(margin, pa.float32()))  # fmt: skip
    table = table.set_column(table.schema.get_field_index("label_certain"), "label_certain",
                             pa.array(certain, pa.bool_()))  # fmt: skip
    table = table.set_column(table.schema.get_field_index("label_verified"), "label_verified",
                             verified)  # fmt: skip
    n_exact = 0
    if flipped:
        rows = np.sort(np.asarray(flipped))
        fresh = []
        with torch.inference_mode():
            for k in np.unique(plen[rows]).tolist():
                idx = seq[rows[plen[rows] == k]]
                for i in range(0, len(idx), bs):
                    part = idx[i : i + bs]
                    scores = score_batch(
                        net, windows(part), [k], s.cont_len, mode=s.mode,
                        suppress_ids=m.suppress, tokenizer=m.tokenizer, device=m.device,
                        save_generations=s.save_generations,
                    )  # fmt: skip
                    fresh.append(_table(part, scores, s.save_generations, verified=True))
        new = pa.concat_tables(fresh).cast(table.schema)
        # both sides sorted by (seq_idx, prompt_len): compare row for row
        new = new.sort_by([("seq_idx", "ascending"), ("prompt_len", "ascending")])
        old_ex = table.take(pa.array(rows)).column("exact_match").to_numpy(zero_copy_only=False)
        new_ex = new.column("exact_match").to_numpy(zero_copy_only=False)
        n_exact = int((old_ex != new_ex).sum())
        keep = np.ones(table.num_rows, bool)
        keep[rows] = False
        table = pa.concat_tables([table.filter(pa.array(keep)), new]).sort_by(
            [("seq_idx", "ascending"), ("prompt_len", "ascending")]
        )
    del net
    info.update(
        n_checked=len(np.flatnonzero(uncertain)),
        n_flipped=len(flipped),
        n_exact_flipped=n_exact,
        n_rescored=len(flipped),
        seconds=round(time.perf_counter() - t0, 3),
    )
    if console:
        console.print(
            f"verify: {info['n_checked']} uncertain labels checked in fp32, "
            f"{info['n_flipped']} changed ({info['n_exact_flipped']} exact-match labels; those "
            f"rows re-scored in fp32), {info['seconds']:.1f}s",
            soft_wrap=True,
        )
    return table, info


def _write_sequence_meta(plan: ShardPlan) -> None:
    """Sequence metadata (duplicates / is_canary / ..., + the --keep-columns as ``extra``) once
    per data fingerprint; rewritten when a run keeps columns the file lacks (their union)."""
    mpath = contract.sequences_meta_path(plan.out, plan.settings.data_fingerprint)
    keep = plan.keep_columns
    if mpath.is_file():
        md = pq.read_schema(mpath).metadata or {}
        had = tuple(json.loads(md.get(contract.KEEP_COLUMNS_KEY, b"[]")))
        if set(keep) <= set(had):
            return
        keep = tuple(dict.fromkeys((*had, *keep)))
    meta = plan.source.sequence_meta(keep)
    if meta is None:
        return
    schema = contract.SEQUENCE_META_SCHEMA
    if contract.SEQUENCE_EXTRA_FIELD.name in meta.column_names:
        schema = schema.append(contract.SEQUENCE_EXTRA_FIELD).with_metadata(meta.schema.metadata)
    buf = io.BytesIO()
    pq.write_table(meta.cast(schema), buf, compression="zstd")
    contract.atomic_write_bytes(mpath, buf.getvalue())


def _manifest(
    plan: ShardPlan,
    m: _Loaded,
    meta: ModelMeta,
    table: pa.Table,
    resume: _Resume,
    n_resumed: int,
    wall: float,
) -> dict[str, Any]:
    """The shard's manifest: settings (from the record), counts, model facts, provenance."""
    s, ref = plan.settings, plan.ref
    manifest: dict[str, Any] = {
        "contract_version": contract.CONTRACT_VERSION,
        "run_id": uuid.uuid4().hex,
        **s.manifest_fields(),
        "model_path": ref.spec,
        "n_rows": table.num_rows,
        "parquet_file": plan.paths[0].name,
        "started_at": resume.started_at,
        "finished_at": provenance.utc_now(),
        **meta.manifest_fields(s.revision, ref.suite_meta, m.n_params, m.non_embedding_params),
        "device": models.device_name(m.device),
        "eos_token_id": m.eos[0] if len(m.eos) == 1 else (m.eos or None),
        "min_k_fraction": MIN_K_FRACTION,
        "data_source": plan.data,
        "n_exact": int(np.sum(table.column("exact_match").to_numpy(zero_copy_only=False))),
        **provenance.run_environment(),
        "versions": provenance.versions(),
        "git_sha": provenance.git_sha(),
        "wall_seconds": round(wall, 3),
        # extras (not in the contract lists): how the run got here
        "attempts": resume.attempts,
        "n_resumed_rows": n_resumed,
        "zlib_definition": "loss / len(zlib.compress(utf8(tokenizer.decode(continuation))))",
    }
    return manifest


def _reuse_complete(
    plan: ShardPlan, meta: ModelMeta, console: Console | None, t0: float
) -> ShardResult | None:
    """A finished shard with the requested settings -> "skipped"; with other settings -> error.

    Model facts are not settings: a shard recording other ones is reused, with a note."""
    c = plan.completion()
    if c.state == "missing":
        return None
    if c.state == "conflict":
        raise MemwhError(c.message())
    m = c.manifest or {}
    pq_path, man_path = plan.paths
    if console:
        console.print(
            f"skipped: {man_path} exists (shard complete with the same settings; --force redoes it)",
            soft_wrap=True,
        )
        if diffs := meta.differences(dict(m)):
            console.print(
                f"[yellow]note:[/] its manifest records other model facts ({', '.join(diffs)}); "
                "they are written when a shard is scored: --force rescores it with yours",
                soft_wrap=True,
            )
    return ShardResult(
        "skipped", pq_path, man_path, int(m.get("n_rows", 0)), int(m.get("n_exact") or 0),
        time.perf_counter() - t0,
    )  # fmt: skip


def score(
    model: str,
    data: str,
    out: str | Path,
    *,
    revision: str | None = None,
    name: str | None = None,
    prompt_len: int | str | list[int] = 32,
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
    progress: bool = True,
    meta: ModelMeta | None = None,
    save_windows: bool = True,
    role: str | None = None,
    variant_of: str | None = None,
    method: str | None = None,
    method_params: str | dict | None = None,
    verify: bool = False,
    offset: int = 0,
    keep_columns: tuple[str, ...] | str = (),
    windows_per_row: int = 1,
) -> ShardResult:
    """Score one shard and write its Parquet file + manifest under `out` (see module docstring).

    `prompt_len` may list several prompt lengths (``"32,64,128"``, ``"25:100:25"``): one row per
    sequence and prompt length, all from one teacher-forced pass in fast mode.

    A complete shard made with the same settings is skipped; one made with other settings
    stops the run with a MemwhError naming them (unless `force`). `meta`: model facts the
    user states (family, size, schedule, step), recorded in the manifest. `save_windows`:
    also write the scored token windows (once per dataset range) for `memwh show`.
    `role`, `variant_of`, `method`, `method_params` declare the unit's place in a controlled
    experiment (contract.ROLES); they go into the manifest unchanged by the scoring.
    `verify`: check in fp32 the labels that are not certain under `dtype` and keep fp32's
    (`verify_rows`; the manifest's ``label_verification`` has the counts).
    `offset`: the scored window starts at this token of each row; rows shorter than
    offset + prompt_len + cont_len are skipped and counted (manifest ``n_skipped_short``).
    `keep_columns`: the data's own columns to carry into the sequence metadata (``extra``).
    `windows_per_row`: score W consecutive windows of each row (seq_idx = row * W + w)."""
    t0 = time.perf_counter()
    console = Console(stderr=True) if progress else None
    role_fields = {"role": role, "variant_of": variant_of, "method": method}
    role_fields["method_params"] = method_params
    try:
        contract.check_role_fields(role_fields)  # before loading anything
    except contract.ContractError as e:
        raise MemwhError(str(e)) from None
    plan = plan_shard(
        model, data, out, revision=revision, name=name, prompt_len=prompt_len,
        cont_len=cont_len, mode=mode, suppress_eos=suppress_eos, seq_range=seq_range,
        shard=shard, num_shards=num_shards, save_generations=save_generations,
        batch_size=batch_size, verify=verify, offset=offset, keep_columns=keep_columns,
        windows_per_row=windows_per_row,
    )  # fmt: skip
    meta = (meta or ModelMeta()).check(plan.settings.revision)
    try:
        role_fields = contract.check_role_fields(
            role_fields, model=plan.settings.model, revision=plan.settings.revision
        )
    except contract.ContractError as e:
        raise MemwhError(str(e)) from None
    dev = models.pick_device(device)
    tdtype = models.pick_dtype(dtype, dev)
    plan.settings = plan.settings.with_resolved(dtype=_parse_dtype_name(tdtype))
    pq_path, man_path = plan.paths
    if force:
        man_path.unlink(missing_ok=True)  # the old shard is incomplete from here on
        shutil.rmtree(plan.partial_dir, ignore_errors=True)
    elif (skipped := _reuse_complete(plan, meta, console, t0)) is not None:
        if save_windows:  # shards scored before windows existed get them on a rerun
            _backfill_windows(out, data, plan.ref, json.loads(man_path.read_text()))
        if plan.keep_columns:  # columns kept now but not when the shard was scored
            _write_sequence_meta(plan)
        return skipped

    loaded = _load(plan, dev, tdtype)
    plan.settings = plan.settings.with_resolved(
        commit_hash=plan.ref.commit_hash,
        batch_size=batch_size
        or auto_batch_size(
            loaded.net, dev, plan.settings.prompt_len, cont_len, plan.settings.all_prompt_lens[0]
        ),
    )
    indices = plan.indices()
    resume = _open_partial(plan.partial_dir, plan.settings, console)
    loop = _score_batches(plan, loaded, indices, resume, console)
    if loop.preempted:
        n_have = sum(
            pq.ParquetFile(f).metadata.num_rows for f in set(_partial_files(plan.partial_dir))
        )
        if console:
            console.print(
                f"preempted ({loop.signame}): {n_have}/{len(indices)} rows saved in "
                f"{plan.partial_dir}; rerun to resume",
                soft_wrap=True,
            )
        return ShardResult("preempted", pq_path, man_path, n_have, 0, time.perf_counter() - t0)

    n_short = len(_skipped(plan.partial_dir))
    table = _assemble(plan, indices)
    if not table.num_rows:
        raise MemwhError(
            f"{plan.source.description}: every sequence of the shard is shorter than the scored "
            f"window (--offset {plan.settings.offset} + --prompt-len + --cont-len = "
            f"{plan.settings.offset + plan.settings.prompt_len + plan.settings.cont_len} "
            "tokens); lower them"
        )
    table, verification = verify_rows(plan, loaded, table, tdtype, console, loop.fit.size)
    _write_sequence_meta(plan)
    if save_windows:
        lo, hi = plan.settings.bounds
        width = plan.settings.prompt_len + plan.settings.cont_len  # the longest prompt's window
        scored = np.unique(table.column("seq_idx").to_numpy())
        _write_windows(out, plan.source, scored, width, lo, hi, plan.settings.offset)
    n_resumed = _n_resumed(resume, len(indices), int(plan.settings.batch_size or 1))
    wall = time.perf_counter() - t0
    manifest = _manifest(plan, loaded, meta, table, resume, n_resumed, wall)
    manifest["label_verification"] = verification
    manifest["n_skipped_short"] = n_short  # rows shorter than offset + prompt_len + cont_len
    # the batch size that computed the rows (smaller than batch_size after out-of-memory)
    manifest["compute_batch_size"] = loop.fit.size
    manifest["oom_halvings"] = loop.fit.halvings
    if role_fields["method_params"] is not None:  # an object in the manifest, not a string
        role_fields["method_params"] = json.loads(role_fields["method_params"])
    manifest.update({k: v for k, v in role_fields.items() if v is not None})
    manifest["parquet_sha256"] = contract.write_scores_parquet(table, pq_path, metadata=manifest)
    contract.write_manifest(man_path, manifest)
    shutil.rmtree(plan.partial_dir, ignore_errors=True)
    secs = time.perf_counter() - t0
    if console:
        console.print(
            f"done: {table.num_rows} rows, {_memorized_summary(table, cont_len)}, "
            f"{secs:.1f}s ({loop.rate:,.1f} seq/s) -> {pq_path}",
            soft_wrap=True,
        )
    return ShardResult("done", pq_path, man_path, table.num_rows, manifest["n_exact"], secs)


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
    out: str | Path,
    source: Any,
    indices: np.ndarray,
    width: int,
    lo: int,
    hi: int,
    offset: int = 0,
) -> None:
    """The scored token windows of [lo, hi), once per dataset range (any unit may write it);
    keyed by the scored dataset's fingerprint (plan.window_fingerprint: names the offset)."""
    path = contract.windows_path(out, window_fingerprint(source.fingerprint, offset), width, lo, hi)
    if path.is_file():
        return
    chunks = (
        (
            indices[i : i + WINDOW_CHUNK],
            data_mod.read_window(source, indices[i : i + WINDOW_CHUNK], width, offset)[0],
        )
        for i in range(0, len(indices), WINDOW_CHUNK)
    )
    contract.write_windows(path, chunks)


def _memorized_summary(table: pa.Table, cont_len: int) -> str:
    """'7 memorized (>= 32 matched tokens, the warehouse's default rule)', per prompt length
    when there are several; says so when cont_len is too short for the rule to hold."""
    need = MEMORIZED_MIN_TOKENS
    if cont_len < need:
        return (
            f"0 memorized: --cont-len {cont_len} < memorized_min_tokens {need}, so the "
            "warehouse's default rule cannot label these rows and `memwh build` leaves the unit "
            "out (build with that var lowered)"
        )
    mem = table.column("prefix_match_len").to_numpy() >= need
    plen = table.column("prompt_len").to_numpy()
    lens = np.unique(plen)
    what = f"(>= {need} matched tokens, the warehouse's default rule)"
    if len(lens) == 1:
        return f"{int(mem.sum())} memorized {what}"
    per = ", ".join(f"k={k}: {int(mem[plen == k].sum())}" for k in lens)
    return f"memorized {what} by prompt length {per}"


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
