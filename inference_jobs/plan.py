"""From command-line options to the settings record of one shard (no model loaded, no torch).

`plan_shard` resolves the model reference, opens the data source (its fingerprint and index
range), fixes the sequence range and the shard's bounds, and returns a `ShardPlan` whose
`settings` (memwh.core.run_settings.RunSettings) is the request that completion, resume and
the manifest compare and record. `memwh infer` (runner.score) and `memwh submit`/`status`
(sweep) build their requests here, so they apply one rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memwh.core import contract
from memwh.core.errors import MemwhError
from memwh.core.run_settings import Completion, RunSettings, completion, parse_prompt_lens

from . import data as data_mod
from . import models

MODES = ("fast", "generate")


def check_options(
    *,
    mode: str,
    prompt_len: int,
    cont_len: int,
    save_generations: bool,
    batch_size: int | None,
    shard: int,
    num_shards: int,
) -> None:
    """One-line errors for option values that are wrong whatever the model and data."""
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


@dataclass
class ShardPlan:
    """One requested shard: its settings record plus the resolved model and data source."""

    settings: RunSettings
    ref: models.ModelRef
    source: data_mod.TokenSource
    out: Path
    data: str  # --data as given (the manifest's data_source)
    keep_columns: tuple[str, ...] = ()  # --keep-columns: carried to the sequence metadata
    _tokenizer: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def paths(self) -> tuple[Path, Path]:
        """(parquet, manifest) of the shard."""
        s = self.settings
        return contract.shard_paths(self.out, s.model, s.revision, s.shard, s.num_shards)

    @property
    def partial_dir(self) -> Path:
        s = self.settings
        return self.paths[0].parent / f".{contract.part_stem(s.shard, s.num_shards)}.partial"

    def indices(self) -> np.ndarray:
        """Sequence indices of the shard present in the data, ascending."""
        return self.source.indices_in(*self.settings.bounds)

    def completion(self) -> Completion:
        return completion(self.out, self.settings)

    def tokenizer(self) -> Any:
        """The model's tokenizer, loaded once (None when the model has none)."""
        if "tok" not in self._tokenizer:
            self._tokenizer["tok"] = models.load_tokenizer(self.ref)
        return self._tokenizer["tok"]


def plan_shard(
    model: str,
    data: str,
    out: str | Path,
    *,
    revision: str | None = None,
    name: str | None = None,
    prompt_len: int | str | tuple[int, ...] | list[int] = 32,
    cont_len: int = 32,
    mode: str = "fast",
    suppress_eos: bool = False,
    dtype: str | None = None,
    seq_range: tuple[int, int] | None = None,
    shard: int = 0,
    num_shards: int = 1,
    save_generations: bool = False,
    batch_size: int | None = None,
    verify: bool = False,
    offset: int = 0,
    keep_columns: tuple[str, ...] | str = (),
    windows_per_row: int = 1,
    sources: dict[tuple[str, ...], data_mod.TokenSource] | None = None,
) -> ShardPlan:
    """Resolve options into a ShardPlan. `dtype` is the resolved torch name (float32, ...) or
    None when not known yet (``auto`` before the device is known); see RunSettings.
    `sources` caches opened data sources across calls (a sweep plans thousands of shards).
    `prompt_len` may list several prompt lengths (memwh.core.run_settings.parse_prompt_lens).
    `offset`: first token of the scored window in each row; rows scored at another offset are
    other sequences, so the data fingerprint names it (``<fingerprint>-o<offset>``)."""
    try:
        lens = parse_prompt_lens(prompt_len)
    except ValueError as e:
        raise MemwhError(str(e)) from None

    check_options(
        mode=mode, prompt_len=lens[0], cont_len=cont_len, save_generations=save_generations,
        batch_size=batch_size, shard=shard, num_shards=num_shards,
    )  # fmt: skip
    if offset < 0:
        raise MemwhError(f"--offset {offset}: the first scored token must be >= 0")
    if windows_per_row < 1:
        raise MemwhError(f"--windows-per-row {windows_per_row}: must be >= 1")
    if Path(out).exists() and not Path(out).is_dir():
        raise MemwhError(f"--out {out}: is a file; pass a folder (created when missing)")
    if seq_range is not None and not 0 <= seq_range[0] < seq_range[1]:
        raise MemwhError(f"--seq-range {seq_range[0]}:{seq_range[1]}: START must be >= 0 and < END")
    ref = models.resolve_model(model, revision, name)
    try:
        contract.shard_paths(out, ref.name, ref.revision, shard, num_shards)
    except contract.ContractError as e:
        raise MemwhError(str(e)) from None
    tok_cache: dict[str, Any] = {}

    def tokenizer_loader() -> Any:
        if "tok" not in tok_cache:
            tok_cache["tok"] = models.load_tokenizer(ref)
            if tok_cache["tok"] is None:
                raise MemwhError(
                    f"{ref.load_path}: the model has no tokenizer (no tokenizer files in its "
                    "folder), so text data cannot be tokenized; add the tokenizer files or pass "
                    "a token table (seq_idx, tokens)"
                )
        return tok_cache["tok"]

    source = _open_source(str(data), ref, tokenizer_loader, sources)
    if windows_per_row > 1:  # window w of row r = sequence r * W + w
        source = data_mod.RowWindows(source, windows_per_row, lens[-1] + cont_len)
    keep = parse_keep_columns(keep_columns)
    data_mod.check_keep_columns(source, keep)
    d_lo, d_hi = source.index_range()
    if seq_range is not None:
        start, end = seq_range
        if start >= end or start < d_lo or end > d_hi:
            raise MemwhError(
                f"--seq-range {start}:{end} is outside the data ({source.description} covers {d_lo}:{d_hi})"
            )
    else:
        start, end = d_lo, d_hi
    if not len(source.indices_in(start, end)):  # a 0-row unit
        raise MemwhError(
            f"--seq-range {start}:{end}: {source.description} has no sequence in that range "
            "(a unit without rows cannot be scored); pick a range that holds sequences"
        )
    settings = RunSettings(
        model=ref.name, model_path=ref.resolved_path, commit_hash=ref.commit_hash,
        revision=ref.revision, data_fingerprint=window_fingerprint(source.fingerprint, offset),
        seq_range=(start, end),
        shard=shard, num_shards=num_shards, prompt_len=lens[-1], cont_len=cont_len, mode=mode,
        suppress_eos=suppress_eos, dtype=dtype, save_generations=save_generations,
        batch_size=batch_size, prompt_lens=lens, verify=verify, offset=offset,
        windows_per_row=windows_per_row,
    )  # fmt: skip
    return ShardPlan(settings, ref, source, Path(out), str(data), keep, tok_cache)


def parse_keep_columns(value: tuple[str, ...] | list[str] | str | None) -> tuple[str, ...]:
    """``"source,url"`` or a list -> ("source", "url") (order kept, duplicates dropped)."""
    names = value.split(",") if isinstance(value, str) else list(value or ())
    return tuple(dict.fromkeys(n.strip() for n in names if n.strip()))


def window_fingerprint(fingerprint: str, offset: int) -> str:
    """The scored dataset's fingerprint: the source's, plus the offset when windows do not start
    at each row's first token (token windows and sequence metadata are keyed by it)."""
    return fingerprint if offset == 0 else f"{fingerprint}-o{offset}"


def _open_source(
    data: str,
    ref: models.ModelRef,
    tokenizer_loader: Any,
    sources: dict[tuple[str, ...], data_mod.TokenSource] | None,
) -> data_mod.TokenSource:
    """open_source, cached per data spec (text data: per data spec and model, since the
    tokenizer is part of what was scored)."""
    if sources is None:
        return data_mod.open_source(data, tokenizer_loader)
    for key in ((data,), (data, ref.resolved_path)):
        if key in sources:
            return sources[key]
    src = data_mod.open_source(data, tokenizer_loader)
    text = isinstance(src, data_mod.TextDataset)
    sources[(data, ref.resolved_path) if text else (data,)] = src
    return src
