"""Settings of the demo suite: corpus shape, model sizes, training schedule.

Everything that changes the bytes of the suite lives in `SuiteSettings`, so its hash is a
safe cache key: same settings (and SUITE_FORMAT) -> same suite, built once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from memwh.core.errors import MemwhError

# Bump when the corpus generator or training code changes what a given setting produces.
# 2: held-out sequences, step0, exposure.parquet; 3: controls, category/window;
# 4: canaries in pairs sharing a prefix (shared_prefix_lens)
SUITE_FORMAT = 4

EOS_ID = 0  # Pythia convention: <|endoftext|> is id 0 and never appears inside a sequence
PAD_ID = 1
UNK_ID = 2
FIRST_WORD_ID = 3  # content tokens are FIRST_WORD_ID .. vocab_size - 1


@dataclass(frozen=True)
class ModelSize:
    """One GPT-NeoX shape of the suite. `lr` is the peak AdamW learning rate
    (small models tolerate, and need, a higher one to learn in few steps)."""

    hidden: int
    layers: int
    heads: int
    lr: float

    @classmethod
    def coerce(cls, value: Any) -> ModelSize:
        if isinstance(value, ModelSize):
            return value
        try:
            if isinstance(value, dict):
                return cls(**value)
            return cls(*value)
        except TypeError as e:
            raise MemwhError(
                f"sizes: cannot read {value!r} as (hidden, layers, heads, lr) ({e})"
            ) from None


DEFAULT_SIZES: tuple[ModelSize, ...] = (
    ModelSize(hidden=32, layers=1, heads=2, lr=2e-2),
    ModelSize(hidden=64, layers=2, heads=4, lr=1e-2),
    ModelSize(hidden=128, layers=3, heads=4, lr=5e-3),
    ModelSize(hidden=272, layers=4, heads=8, lr=3e-3),
)


@dataclass(frozen=True)
class SuiteSettings:
    """All knobs of `build_suite`. Pass any field name as an override keyword."""

    seed: int = 0
    # corpus: a sparse Zipfian Markov chain over `vocab_size` tokens
    vocab_size: int = 2048
    seq_len: int = 64  # prompt 32 + continuation 32, like the Pythia memorization eval
    branching: int = 4  # successors per token: how predictable the background language is
    zipf_exponent: float = 1.0  # skew of token popularity (unigram frequencies)
    successor_exponent: float = 2.0  # skew of transition probabilities over the successors
    n_background: int = 1024  # unique background sequences (learnable, not memorizable)
    # Background sequences of the same language that no model trains on: appended after the
    # training order (seq_idx >= the trained rows), first_step NULL in the suite's exposure.
    n_held_out: int = 512
    ladder: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256)  # copies per canary
    canaries_per_rung: int = 8  # distinct canaries inserted with each copy count
    # Shared prefixes (templates, licences, boilerplate of real text): in every rung, canary
    # pair j shares its first shared_prefix_lens[j] tokens and then diverges, both members with
    # the rung's copy count. A prompt of k <= P tokens cannot tell the members apart, so at
    # most one is extractable; only k > P can extract both (memorization rises with k, as in
    # Carlini et al. 2023). Needs 2 * len(...) <= canaries_per_rung; () = no sharing.
    shared_prefix_lens: tuple[int, ...] = (4, 12, 20, 28)
    # training: one pass over the shuffled corpus, identical batches for every model
    sizes: tuple[ModelSize, ...] = DEFAULT_SIZES
    batch_size: int = 16  # sequences per optimizer step
    warmup_frac: float = 0.1
    min_lr_frac: float = 0.1  # cosine decay to this fraction of the peak (as Pythia)
    weight_decay: float = 0.01
    n_checkpoints: int = 6  # evenly spaced, the last is the final step
    save_initial: bool = True  # also save the initial weights as step0 (causal profiles need it)
    # Controlled experiments (Hubble, TinyMem): for sizes[control_size], a *standard* model
    # (same initial weights, the same batches with every canary copy replaced by a fresh
    # background sequence; final checkpoint only) and an *edited* copy of the perturbed final
    # checkpoint fine-tuned `edit_steps` steps on fresh background text. None: no controls;
    # an index past the last size means the last size.
    control_size: int | None = 1
    edit_steps: int = 48
    edit_lr: float = 5e-3
    family: str = "demo"

    def __post_init__(self) -> None:
        object.__setattr__(self, "sizes", tuple(ModelSize.coerce(s) for s in self.sizes))
        object.__setattr__(self, "ladder", tuple(int(c) for c in self.ladder))
        object.__setattr__(
            self, "shared_prefix_lens", tuple(int(p) for p in self.shared_prefix_lens)
        )
        pairs = len(self.shared_prefix_lens) if self.canaries_per_rung else 0
        checks = [
            (
                self.vocab_size > FIRST_WORD_ID + self.branching,
                "vocab_size",
                "must exceed branching + 3",
            ),
            (self.seq_len >= 2, "seq_len", "must be >= 2"),
            (self.branching >= 1, "branching", "must be >= 1"),
            (self.n_background >= 0, "n_background", "must be >= 0"),
            (self.n_held_out >= 0, "n_held_out", "must be >= 0"),
            (all(c >= 1 for c in self.ladder), "ladder", "copy counts must be >= 1"),
            (self.canaries_per_rung >= 0, "canaries_per_rung", "must be >= 0"),
            (
                all(1 <= p < self.seq_len for p in self.shared_prefix_lens),
                "shared_prefix_lens",
                f"each shared prefix must be 1 .. seq_len - 1 = {self.seq_len - 1} tokens "
                f"(got {list(self.shared_prefix_lens)})",
            ),
            (
                2 * pairs <= self.canaries_per_rung,
                "shared_prefix_lens",
                f"{pairs} pairs need 2 x {pairs} canaries per rung but canaries_per_rung is "
                f"{self.canaries_per_rung}; list fewer prefix lengths (() for none) or raise "
                "canaries_per_rung",
            ),
            (
                pairs == 0 or self.branching >= 2,
                "shared_prefix_lens",
                "pairs that diverge need branching >= 2 (a second successor); use () for none",
            ),
            (len(self.sizes) >= 1, "sizes", "needs at least one model size"),
            (self.batch_size >= 1, "batch_size", "must be >= 1"),
            (self.n_checkpoints >= 1, "n_checkpoints", "must be >= 1"),
            (0 <= self.warmup_frac < 1, "warmup_frac", "must be in [0, 1)"),
            (self.control_size is None or self.control_size >= 0, "control_size", "must be >= 0"),
            (self.edit_steps >= 0, "edit_steps", "must be >= 0"),
            (self.edit_lr > 0, "edit_lr", "must be > 0"),
        ]
        for s in self.sizes:
            checks.append(
                (
                    s.hidden % s.heads == 0,
                    "sizes",
                    f"hidden {s.hidden} not divisible by heads {s.heads}",
                )
            )
        for ok, name, why in checks:
            if not ok:
                raise MemwhError(f"demo suite setting {name}: {why}")
        if self.n_steps < self.n_checkpoints:
            raise MemwhError(
                f"demo suite: corpus gives only {self.n_steps} steps of batch_size {self.batch_size} "
                f"but n_checkpoints={self.n_checkpoints}; grow n_background or shrink batch_size"
            )

    @classmethod
    def from_overrides(cls, seed: int = 0, **overrides: Any) -> SuiteSettings:
        """Defaults + keyword overrides; an unknown keyword is a user error, not a silent no-op."""
        names = {f.name for f in dataclasses.fields(cls)} - {"seed"}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise MemwhError(
                f"build_suite: unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}"
            )
        return cls(seed=seed, **overrides)

    @property
    def control_index(self) -> int | None:
        """Index into `sizes` of the size that gets a standard and an edited model."""
        return None if self.control_size is None else min(self.control_size, len(self.sizes) - 1)

    @property
    def n_canary_rows(self) -> int:
        """Rows of the training order that are canary copies."""
        return self.canaries_per_rung * sum(self.ladder)

    @property
    def n_fresh(self) -> int:
        """Fresh background rows drawn for the controls: one per canary copy (the standard
        model's replacements) and the edited model's fine-tuning batches."""
        if self.control_index is None:
            return 0
        return self.n_canary_rows + self.edit_steps * self.batch_size

    @property
    def n_sequences(self) -> int:
        """Rows of the training order (background + canary copies), held-out rows excluded."""
        return self.n_background + self.canaries_per_rung * sum(self.ladder)

    @property
    def n_corpus_rows(self) -> int:
        """Rows of corpus.parquet: the training order, then the held-out rows."""
        return self.n_sequences + self.n_held_out

    @property
    def n_steps(self) -> int:
        """Optimizer steps of one pass; a partial last batch is dropped (its rows stay unseen)."""
        return self.n_sequences // self.batch_size

    @property
    def checkpoint_steps(self) -> list[int]:
        """`n_checkpoints` evenly spaced steps ending at the last, plus 0 with save_initial."""
        n, k = self.n_steps, self.n_checkpoints
        steps = {max(1, round(n * (i + 1) / k)) for i in range(k)}
        return sorted(steps | ({0} if self.save_initial else set()))

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["ladder"] = list(self.ladder)
        d["shared_prefix_lens"] = list(self.shared_prefix_lens)
        d["sizes"] = [dataclasses.asdict(s) for s in self.sizes]
        return d

    def config_hash(self) -> str:
        payload = json.dumps({"format": SUITE_FORMAT, **self.to_json()}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]
