"""The demo training corpus: a structured stochastic language plus duplicated canaries.

Background sequences come from a sparse random Markov chain with Zipfian token popularity
and Zipfian successor probabilities: a model can learn its statistics (loss falls far below
log(vocab)), but each background sequence is unique, so nothing there is worth memorizing.
Canaries are drawn from the same language (their prompts look like any other text) and
each is inserted a known number of times from a ladder (1, 2, 4, ...). All rows are shuffled
into one training order; `seq_idx` is the position in that order, like Pythia's index, so
checkpoint stepN has seen exactly `seq_idx < N * batch_size`.

Real text shares long prefixes (licences, templates, boilerplate) and only a longer prompt
says which continuation follows (Carlini et al. 2023: extraction rises with prompt length).
An order-1 chain alone has no such structure: 8 tokens of a canary already identify it. So
the canaries of each copy count come in pairs (`shared_prefix_lens`, default 4, 12, 20, 28
tokens): the two members share their first P tokens, then diverge at token P along the chain.
With a prompt of k <= P tokens the prompt lies inside the shared prefix and the continuation
crosses the divergence, so at most one member can be extracted; with k > P both can. For a
model that memorizes a whole rung of 8, the extractable canaries at k = 8, 16, 24, 32 are
at most 5, 6, 7, 8.

Held-out sequences (same language, distinct from every other row, never trained on) follow
the training order, so every unit has members and held-out non-members. The suite's
exposure table (`exposure_table`) says per seq_idx which step first trained on it (NULL for
held-out rows and for the dropped partial last batch), how often, and when last.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from memwh.demo_suite.settings import FIRST_WORD_ID, SuiteSettings

CORPUS_FILE = "corpus.parquet"

CORPUS_SCHEMA = pa.schema(
    [
        pa.field("seq_idx", pa.int64(), nullable=False),
        pa.field("tokens", pa.list_(pa.int32()), nullable=False),
        pa.field("duplicates", pa.int32(), nullable=False),
        pa.field("is_canary", pa.bool_(), nullable=False),
        # sequence metadata of controlled insertion (contract.SEQUENCE_META_SCHEMA): canary |
        # background | held_out, and the 0-based steps of a canary's first and last copy
        pa.field("category", pa.string(), nullable=False),
        pa.field("insert_first_step", pa.int64(), nullable=True),
        pa.field("insert_last_step", pa.int64(), nullable=True),
    ]
)


def _zipf(n: int, exponent: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    return w / w.sum()


class MarkovLanguage:
    """Sparse first-order Markov chain over the content tokens (ids >= FIRST_WORD_ID).

    Every token has `branching` successors, picked by global popularity (so frequent tokens
    stay frequent), with Zipfian transition probabilities. Special ids (EOS=0, pad, unk)
    never occur.
    """

    def __init__(
        self,
        vocab_size: int,
        branching: int,
        exponent: float,
        successor_exponent: float,
        rng: np.random.Generator,
    ):
        n_words = vocab_size - FIRST_WORD_ID
        self.popularity = np.empty(n_words)
        self.popularity[rng.permutation(n_words)] = _zipf(n_words, exponent)
        # Successor sets favour popular tokens, but their order (hence which successor gets
        # the high transition probability) is random, so no single token dominates the text.
        self.successors = np.stack(
            [
                rng.permutation(
                    rng.choice(n_words, size=branching, replace=False, p=self.popularity)
                )
                for _ in range(n_words)
            ]
        )
        self.cum_probs = np.cumsum(_zipf(branching, successor_exponent))
        self.cum_probs[-1] = 1.0

    def sample(self, n: int, length: int, rng: np.random.Generator) -> np.ndarray:
        """`n` independent sequences of `length` token ids, shape (n, length), int32."""
        out = np.empty((n, length), dtype=np.int64)
        out[:, 0] = rng.choice(len(self.popularity), size=n, p=self.popularity)
        self._walk(out, 1, rng)
        return (out + FIRST_WORD_ID).astype(np.int32)

    def _walk(self, out: np.ndarray, start: int, rng: np.random.Generator) -> None:
        """Fill columns `start`.. of `out` (word indices) by walking the chain from column
        `start` - 1."""
        for t in range(start, out.shape[1]):
            branch = np.searchsorted(self.cum_probs, rng.random(len(out)), side="right")
            out[:, t] = self.successors[out[:, t - 1], np.minimum(branch, len(self.cum_probs) - 1)]

    def diverge(self, row: np.ndarray, shared: int, rng: np.random.Generator) -> np.ndarray:
        """A sequence that shares `row`'s first `shared` tokens and then leaves it: token
        `shared` is another successor of token `shared` - 1 (drawn with the chain's transition
        probabilities among the successors other than `row`'s), the rest walks the chain on.
        `row` holds token ids of this language; needs branching >= 2."""
        words = np.asarray(row, dtype=np.int64) - FIRST_WORD_ID
        succ = self.successors[words[shared - 1]]
        probs = np.diff(self.cum_probs, prepend=0.0)
        others = succ != words[shared]
        out = np.empty((1, len(words)), dtype=np.int64)
        out[0, :shared] = words[:shared]
        out[0, shared] = rng.choice(succ[others], p=probs[others] / probs[others].sum())
        self._walk(out, shared + 1, rng)
        return (out[0] + FIRST_WORD_ID).astype(np.int32)


def _unique_rows(candidates: np.ndarray, taken: set[bytes], need: int) -> np.ndarray:
    rows = []
    for row in candidates:
        key = row.tobytes()
        if key not in taken:
            taken.add(key)
            rows.append(row)
            if len(rows) == need:
                break
    if len(rows) < need:
        raise RuntimeError(
            "could not draw enough distinct sequences; raise branching or vocab_size"
        )
    return np.stack(rows) if rows else candidates[:0]


def share_prefixes(
    canaries: np.ndarray, settings: SuiteSettings, lang: MarkovLanguage, taken: set[bytes]
) -> np.ndarray:
    """Rewrite the second canary of each pair so that it shares the first's prefix.

    `canaries` are in rung order (`canaries_per_rung` per copy count); in each rung, pair j
    is canaries 2j and 2j + 1 and shares settings.shared_prefix_lens[j] tokens: the second
    keeps the first's tokens [0, P) and then diverges along the chain (MarkovLanguage.diverge),
    so both are text of the language. Drawn from their own RNG stream, so every other row of
    the corpus (background, held-out, fresh, training order) is the same as without sharing;
    each new row is distinct from every row in `taken` (and joins it)."""
    prefixes = settings.shared_prefix_lens
    if not prefixes or not len(canaries):
        return canaries
    rng = np.random.default_rng([settings.seed, 0xC1])
    out = canaries.copy()
    for rung in range(len(settings.ladder)):
        for j, shared in enumerate(prefixes):
            first = rung * settings.canaries_per_rung + 2 * j
            for _ in range(100):
                row = lang.diverge(out[first], shared, rng)
                if (key := row.tobytes()) not in taken:
                    break
            else:
                raise RuntimeError(
                    "could not draw a distinct diverging canary; raise branching or vocab_size"
                )
            taken.add(key)
            out[first + 1] = row
    return out


def build_corpus(settings: SuiteSettings) -> pa.Table:
    """The shuffled corpus as an Arrow table (deterministic in `settings`)."""
    return build_corpus_and_fresh(settings)[0]


def build_corpus_and_fresh(settings: SuiteSettings) -> tuple[pa.Table, np.ndarray]:
    """The corpus and `settings.n_fresh` further background rows of the same language, distinct
    from every corpus row (drawn last: the corpus is the same with or without them). The
    controls train on them: the standard model's replacements of canary copies, then the
    edited model's fine-tuning batches."""
    rng = np.random.default_rng([settings.seed, 0xC0])
    lang = MarkovLanguage(
        settings.vocab_size,
        settings.branching,
        settings.zipf_exponent,
        settings.successor_exponent,
        rng,
    )
    L = settings.seq_len
    taken: set[bytes] = set()
    # Distinct canaries first, then background rows that collide with nothing.
    n_canaries = settings.canaries_per_rung * len(settings.ladder)
    canaries = _unique_rows(lang.sample(n_canaries + 16, L, rng), taken, n_canaries)
    # (the replaced second members stay in `taken`, so the background draws do not change)
    canaries = share_prefixes(canaries, settings, lang, taken)
    background = _unique_rows(
        lang.sample(settings.n_background + 64, L, rng), taken, settings.n_background
    )
    copies = np.repeat(np.asarray(settings.ladder, dtype=np.int64), settings.canaries_per_rung)
    source_rows = np.concatenate([canaries, background]) if n_canaries else background
    row_of = np.concatenate(
        [
            np.repeat(np.arange(n_canaries), copies),
            np.arange(n_canaries, n_canaries + len(background)),
        ]
    )
    row_of = row_of[rng.permutation(len(row_of))]
    tokens = source_rows[row_of]
    # Declared duplicates are counted on the final token lists, so they are true by construction.
    _, inverse, counts = np.unique(tokens, axis=0, return_inverse=True, return_counts=True)
    duplicates = counts[inverse.reshape(-1)].astype(np.int32)
    is_canary = row_of < n_canaries
    if settings.n_held_out:
        # drawn last, so the training order is the same with or without held-out rows
        held = _unique_rows(
            lang.sample(settings.n_held_out + 64, L, rng), taken, settings.n_held_out
        )
        tokens = np.concatenate([tokens, held])
        duplicates = np.concatenate([duplicates, np.zeros(len(held), np.int32)])  # 0 copies trained
        is_canary = np.concatenate([is_canary, np.zeros(len(held), bool)])
    fresh = (
        _unique_rows(lang.sample(settings.n_fresh + 64, L, rng), taken, settings.n_fresh)
        if settings.n_fresh
        else np.empty((0, L), np.int32)
    )
    n = len(tokens)
    category = np.where(is_canary, "canary", "background").astype(object)
    category[settings.n_sequences :] = "held_out"
    # a canary's insertion window: the steps that trained its first and last copy
    exposure = exposure_table(tokens.astype(np.int64), settings.n_steps, settings.batch_size)
    canary = pa.array(is_canary, type=pa.bool_())
    window = [
        pc.if_else(canary, exposure.column(c).combine_chunks(), pa.scalar(None, pa.int64()))
        for c in ("first_step", "last_step")
    ]
    flat = pa.array(tokens.reshape(-1), type=pa.int32())
    offsets = pa.array(np.arange(0, n * L + 1, L, dtype=np.int32), type=pa.int32())
    table = pa.Table.from_arrays(
        [
            pa.array(np.arange(n, dtype=np.int64), type=pa.int64()),
            pa.ListArray.from_arrays(offsets, flat),
            pa.array(duplicates, type=pa.int32()),
            pa.array(is_canary, type=pa.bool_()),
            pa.array(category, type=pa.string()),
            *window,
        ],
        schema=CORPUS_SCHEMA,
    )
    return table, fresh


EXPOSURE_FILE = "exposure.parquet"
STANDARD_EXPOSURE_FILE = "exposure_standard.parquet"  # the standard model never saw a canary

EXPOSURE_SCHEMA = pa.schema(
    [
        pa.field("seq_idx", pa.int64(), nullable=False),
        pa.field("first_step", pa.int64(), nullable=True),
        pa.field("n_exposures", pa.int32(), nullable=True),
        pa.field("last_step", pa.int64(), nullable=True),
    ]
)


def exposure_table(tokens: np.ndarray, n_steps: int, batch_size: int) -> pa.Table:
    """Per corpus row: the 0-based steps that first and last trained on its token sequence
    and how many copies were trained (NULL when none was: held-out rows, dropped last batch).

    Step s (0-based) trains rows [s * B, (s + 1) * B); a copy of a canary shares the values
    of its sequence, so the table is right for the corpus and for its distinct-row subset.
    """
    n = len(tokens)
    trained = n_steps * batch_size
    _, inverse = np.unique(tokens, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    k = int(inverse.max()) + 1 if n else 0
    pos = np.arange(n)
    in_training = pos < trained
    first = np.full(k, np.iinfo(np.int64).max)
    last = np.full(k, -1)
    np.minimum.at(first, inverse[in_training], pos[in_training])
    np.maximum.at(last, inverse[in_training], pos[in_training])
    copies = np.bincount(inverse[in_training], minlength=k)
    seen = copies[inverse] > 0
    return pa.Table.from_arrays(
        [
            pa.array(pos.astype(np.int64)),
            pa.array(first[inverse] // batch_size, mask=~seen, type=pa.int64()),
            pa.array(copies[inverse].astype(np.int32), mask=~seen, type=pa.int32()),
            pa.array(last[inverse] // batch_size, mask=~seen, type=pa.int64()),
        ],
        schema=EXPOSURE_SCHEMA,
    )


def write_corpus(table: pa.Table, path: str | Path) -> None:
    """Parquet with fixed writer options (byte-identical for identical tables)."""
    pq.write_table(table, str(path), compression="zstd", row_group_size=1 << 16)


def standard_order(tokens: np.ndarray, is_canary: np.ndarray, fresh: np.ndarray) -> np.ndarray:
    """The standard (control) model's training order: the perturbed order with every canary
    copy replaced, in order, by a fresh background row, so each background row is trained at
    the same step as in the perturbed models and no canary is ever seen (Hubble's design)."""
    out = tokens.copy()
    idx = np.flatnonzero(is_canary)
    out[idx] = fresh[: len(idx)]
    return out


def read_tokens(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tokens (n, L) int64, duplicates (n,), is_canary (n,)) in seq_idx order."""
    t = pq.read_table(str(path)).sort_by("seq_idx")
    tok = t.column("tokens").combine_chunks()
    n = len(tok)
    flat = tok.flatten().to_numpy()
    return (
        flat.reshape(n, -1).astype(np.int64),
        t.column("duplicates").to_numpy(),
        t.column("is_canary").to_numpy(),
    )


UNIQUE_FILE = "corpus_unique.parquet"


def unique_sequences(suite_dir: str | Path) -> Path:
    """The corpus with one row per distinct sequence, at its first position in training order.

    Scoring every copy of a 256-times duplicated canary measures the same thing 256 times
    (and makes the demo's rates say "most of the corpus is memorized"). Memorization studies
    report rates over distinct sequences grouped by copy count (Carlini et al. 2023), so the
    demo scores this file. seq_idx stays the first occurrence: checkpoint stepN has seen it
    iff seq_idx < N * sequences_per_step, as for the full corpus. Written once, atomically.
    """
    import polars as pl

    from memwh.core.contract import atomic_write_bytes

    suite_dir = Path(suite_dir)
    out = suite_dir / UNIQUE_FILE
    if out.is_file():
        return out
    df = (
        pl.read_parquet(suite_dir / CORPUS_FILE)
        .sort("seq_idx")
        .unique(subset="tokens", keep="first", maintain_order=True)
    )
    table = df.to_arrow().cast(CORPUS_SCHEMA)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", row_group_size=1 << 16)
    atomic_write_bytes(out, buf.getvalue())
    return out
