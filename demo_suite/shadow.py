"""A shadow-model population (Carlini et al. 2022; Dentan et al.): many tiny GPT-NeoX models,
each trained on its own random half of a small corpus, plus one audited model trained the
same way on another random half, with an exposure table per model.

The corpus mixes sequences of the demo's Markov language (easy: low loss whether trained or
not) with uniformly random token sequences (hard: high loss either way), so a sequence's loss
says more about its difficulty than about membership; the shadow models' in / out fits of
each sequence calibrate that away (the premise of LiRA and of counterfactual memorization).

Cached like the main suite: a folder with the same settings hash is reused. Layout:
    corpus.parquet                 seq_idx, tokens, category (markov | random)
    <model>/step<N>/               each model's final weights + tokenizer
    exposure/<model>.parquet       seq_idx, first_step, n_exposures, last_step per model
    suite_manifest.json/.csv       settings, hash, one checkpoint row per model (role in JSON)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from memwh.core.errors import MemwhError
from memwh.demo_suite.corpus import MarkovLanguage, write_corpus
from memwh.demo_suite.manifest import checkpoint_row, is_complete, write_manifest
from memwh.demo_suite.settings import FIRST_WORD_ID, ModelSize, SuiteSettings

SHADOW_FORMAT = 1
CORPUS = "corpus.parquet"
TARGET = "shadow-target"
# the main suite's second size (hidden 64, 2 layers): big enough to memorize its half in 8 passes
DEFAULT_SIZE = ModelSize(hidden=64, layers=2, heads=4, lr=1e-2)


@dataclass(frozen=True)
class ShadowSettings:
    """Knobs of `build_shadow_suite`; everything that changes its bytes (the cache key)."""

    seed: int = 0
    n_shadow: int = 16  # shadow models; each trains on an independent random half
    n_sequences: int = 256
    random_share: float = 0.5  # share of uniformly random (hard) sequences
    epochs: int = 8  # passes over a model's half (reshuffled each pass)
    size: ModelSize = DEFAULT_SIZE
    batch_size: int = 16
    vocab_size: int = 2048
    seq_len: int = 64
    family: str = "demo-shadow"

    def __post_init__(self) -> None:
        object.__setattr__(self, "size", ModelSize.coerce(self.size))
        checks = [
            (self.n_shadow >= 2, "n_shadow", "needs at least 2 shadow models"),
            (self.n_sequences >= 2 * self.batch_size, "n_sequences", "must be >= 2 batches"),
            (0 <= self.random_share <= 1, "random_share", "must be in [0, 1]"),
            (self.epochs >= 1, "epochs", "must be >= 1"),
        ]
        for ok, name, why in checks:
            if not ok:
                raise MemwhError(f"shadow suite setting {name}: {why}")

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["size"] = dataclasses.asdict(self.size)
        return d

    def config_hash(self) -> str:
        payload = json.dumps({"format": SHADOW_FORMAT, **self.to_json()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def model_names(self) -> list[str]:
        return [f"shadow-{i:02d}" for i in range(self.n_shadow)] + [TARGET]


def shadow_corpus(s: ShadowSettings) -> tuple[np.ndarray, np.ndarray]:
    """(tokens (n, L) int64, is_random (n,)): Markov and random rows in shuffled order."""
    rng = np.random.default_rng([s.seed, 0x5AD])
    lang = MarkovLanguage(s.vocab_size, 4, 1.0, 2.0, rng)
    n_random = round(s.n_sequences * s.random_share)
    markov = lang.sample(s.n_sequences - n_random, s.seq_len, rng).astype(np.int64)
    random = rng.integers(FIRST_WORD_ID, s.vocab_size, (n_random, s.seq_len))
    tokens = np.concatenate([markov, random])
    is_random = np.r_[np.zeros(len(markov), bool), np.ones(n_random, bool)]
    order = rng.permutation(s.n_sequences)
    return tokens[order], is_random[order]


def memberships(s: ShadowSettings) -> np.ndarray:
    """(n_models, n_sequences) bool: which sequences each model trains on (exactly half)."""
    rng = np.random.default_rng([s.seed, 0x1B])
    half = s.n_sequences // 2
    keep = np.zeros((s.n_shadow + 1, s.n_sequences), bool)
    for k in range(s.n_shadow + 1):
        keep[k, rng.permutation(s.n_sequences)[:half]] = True
    return keep


def training_order(s: ShadowSettings, kept: np.ndarray, k: int) -> np.ndarray:
    """Row indices of model k's training stream: `epochs` reshuffled passes over its half."""
    rng = np.random.default_rng([s.seed, 0x0D, k])
    idx = np.flatnonzero(kept)
    return np.concatenate([idx[rng.permutation(len(idx))] for _ in range(s.epochs)])


def exposure_of(order: np.ndarray, n: int, batch_size: int, n_steps: int) -> pa.Table:
    """seq_idx, first_step, n_exposures, last_step of one model (NULL: never trained)."""
    pos = np.arange(n_steps * batch_size)  # a partial last batch is dropped by the trainer
    rows = order[: len(pos)]
    first = np.full(n, len(pos))
    last = np.full(n, -1)
    np.minimum.at(first, rows, pos)
    np.maximum.at(last, rows, pos)
    count = np.bincount(rows, minlength=n)
    never = count == 0
    return pa.table(
        {
            "seq_idx": np.arange(n, dtype=np.int64),
            "first_step": pa.array(first // batch_size, mask=never, type=pa.int64()),
            "n_exposures": pa.array(count.astype(np.int32), mask=never, type=pa.int32()),
            "last_step": pa.array(last // batch_size, mask=never, type=pa.int64()),
        }
    )


def build_shadow_suite(
    out: str | os.PathLike, *, progress: bool = True, threads: int | None = None, **overrides
) -> Path:
    """Build (or reuse) the shadow population under `out` and return the folder. `overrides`
    are ShadowSettings fields (e.g. n_shadow, n_sequences, epochs for a test population)."""
    import torch
    from rich.console import Console

    from memwh.demo_suite.build import _auto_threads, _check_replaceable, _swap_into_place
    from memwh.demo_suite.train import train_model

    names = {f.name for f in dataclasses.fields(ShadowSettings)}
    if unknown := sorted(set(overrides) - names):
        raise MemwhError(f"shadow suite: unknown setting(s) {', '.join(unknown)}")
    s = ShadowSettings(**overrides)
    out = Path(out)
    chash = s.config_hash()
    console = Console(stderr=True, quiet=not progress)
    if is_complete(out, chash):
        console.print(f"shadow suite up to date ({chash}): {out}")
        return out
    _check_replaceable(out)
    t0 = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.building-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "exposure").mkdir(parents=True)
    prev = torch.get_num_threads()
    n_threads = threads or _auto_threads()
    torch.set_num_threads(n_threads)
    try:
        tokens, is_random = shadow_corpus(s)
        n, L = tokens.shape
        flat = pa.array(tokens.reshape(-1), type=pa.int32())
        offsets = pa.array(np.arange(0, n * L + 1, L, dtype=np.int32), type=pa.int32())
        write_corpus(
            pa.table(
                {
                    "seq_idx": np.arange(n, dtype=np.int64),
                    "tokens": pa.ListArray.from_arrays(offsets, flat),
                    "category": np.where(is_random, "random", "markov"),
                }
            ),
            tmp / CORPUS,
        )
        keep = memberships(s)
        rows = []
        for k, name in enumerate(s.model_names()):
            order = training_order(s, keep[k], k)
            # the main suite's trainer (warmup + cosine schedule) over the stream `order`
            train_settings = SuiteSettings(
                seed=s.seed, vocab_size=s.vocab_size, seq_len=s.seq_len, n_background=len(order),
                n_held_out=0, ladder=(), canaries_per_rung=0, sizes=(s.size,),
                batch_size=s.batch_size, n_checkpoints=1, save_initial=False, control_size=None,
                family=s.family,
            )  # fmt: skip
            n_steps = train_settings.n_steps
            (info,) = train_model(
                k, s.size, tokens[order], train_settings, tmp, name=name, checkpoint_steps=[n_steps]
            )
            write_corpus(
                exposure_of(order, n, s.batch_size, n_steps), tmp / "exposure" / f"{name}.parquet"
            )
            row = checkpoint_row(
                model=name, family=s.family, step=n_steps, n_params=info.n_params,
                non_embedding_params=info.non_embedding_params, sequences_per_step=s.batch_size,
                seq_len=s.seq_len, train_loss=info.train_loss,
                path=info.path.relative_to(tmp).as_posix(),
            )  # fmt: skip
            rows.append(row)
            console.print(f"  {name}: {n_steps} steps, train loss {info.train_loss:.3f}")
        seconds = time.perf_counter() - t0
        manifest = {
            "suite_format": f"shadow-{SHADOW_FORMAT}",
            "config_hash": chash,
            "family": s.family,
            "settings": s.to_json(),
            "corpus": {"path": CORPUS, "n_sequences": n, "n_random": int(is_random.sum())},
            "models": s.model_names(),
            # the audited model has no role: any non-shadow unit of the dataset is audited
            "roles": {m: (None if m == TARGET else "shadow") for m in s.model_names()},
            "exposure_dir": "exposure",
            "checkpoints": rows,
            "build_seconds": round(seconds, 1),
            "torch_threads": n_threads,
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        write_manifest(tmp, manifest)
        _swap_into_place(tmp, out)
    finally:
        torch.set_num_threads(prev)
        shutil.rmtree(tmp, ignore_errors=True)
    console.print(
        f"shadow suite built: {s.n_shadow} shadow models + {TARGET}, {n} sequences, "
        f"{time.perf_counter() - t0:.0f} s -> {out}"
    )
    return out
