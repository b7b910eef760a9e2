"""Read what a model memorized: the scored windows as text (`memwh show` as a function).

The warehouse view `scored_windows` holds the token ids (prompt, true continuation, saved
generation, first mismatch, the build's label); this module picks a unit's rows and decodes
them with the unit's own tokenizer (found through its runs' model_path and revision), or with
the one given. When no tokenizer can be loaded the ids are printed instead of text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from memwh.core.errors import MemwhError
from memwh.query import sql

# Marks where greedy decoding first departs from the true continuation.
MISMATCH_MARK = "⟦≠⟧"
# Follows the label of a sequence whose label is not certain under the run's dtype.
UNCERTAIN_MARK = "(uncertain)"


@dataclass
class ScoredText:
    """One scored sequence of a unit, as token ids and (when a tokenizer is known) text."""

    model: str
    revision: str
    seq_idx: int
    is_memorized: bool
    prefix_match_len: int | None
    cont_len: int
    first_mismatch: int | None
    memorization_score: float | None
    duplicates: int | None
    is_canary: bool | None
    prompt_tokens: list[int] | None
    continuation_tokens: list[int] | None
    generated_tokens: list[int] | None
    prompt: str | None = None
    continuation: str | None = None  # with MISMATCH_MARK at the first mismatch
    generation: str | None = None  # with MISMATCH_MARK at the first mismatch
    as_ids: bool = False  # no tokenizer: the "text" is the token ids
    label_certain: bool | None = None  # None: unknown (contract < 3, imports)
    label_verified: bool | None = None
    dataset: str | None = None  # the unit's dataset (data_fingerprint)


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _unit(
    model: str, revision: str | None, db: Any, dataset: str | None = None
) -> tuple[str, str, str | None, str]:
    """(model, revision, model_path, dataset); revision defaults to the unit's latest step, the
    dataset to the only one that checkpoint scored (an error lists them when there are several)."""
    where = f"model = {_quote(model)}" + (f" AND revision = {_quote(revision)}" if revision else "")
    runs = sql(
        f"SELECT revision, any_value(model_path) AS model_path, max(step) AS step "
        f"FROM stg_memwh__runs WHERE {where} GROUP BY revision "
        "ORDER BY step DESC NULLS LAST, revision DESC",
        db,
    )
    if runs.height == 0:
        known = sql("SELECT DISTINCT model || '@' || revision AS u FROM stg_memwh__runs", db)
        hint = ", ".join(sorted(known["u"].to_list())[:8])
        what = f"{model}@{revision}" if revision else model
        raise MemwhError(
            f"no unit {what} in the warehouse (known: {hint}); check --model/--revision"
        )
    row = runs.row(0, named=True)
    datasets = sql(
        f"SELECT DISTINCT dataset FROM stg_memwh__runs WHERE model = {_quote(model)} "
        f"AND revision = {_quote(row['revision'])} ORDER BY dataset",
        db,
    )["dataset"].to_list()
    unit = f"{model}@{row['revision']}"
    if dataset is not None and dataset not in datasets:
        raise MemwhError(
            f"{unit} was not scored on dataset {dataset!r} (it was on {', '.join(datasets)}); "
            "check --dataset"
        )
    if dataset is None and len(datasets) > 1:
        raise MemwhError(
            f"{unit} was scored on several datasets ({', '.join(datasets)}); pick one with --dataset"
        )
    return model, row["revision"], row["model_path"], dataset or datasets[0]


def load_unit_tokenizer(model_path: str | None, revision: str) -> Any:
    """The unit's tokenizer via the same resolution as `memwh infer`; None when unavailable."""
    if not model_path:
        return None
    from memwh.inference_jobs.models import load_tokenizer, resolve_model

    try:
        return load_tokenizer(resolve_model(model_path, revision))
    except (MemwhError, OSError, ValueError):
        return None


def _decoder(tokenizer: Any) -> Any:
    if tokenizer is None:
        return lambda ids: " ".join(map(str, ids))
    return lambda ids: tokenizer.decode(list(ids))


def _marked(tokens: list[int], cut: int | None, decode: Any) -> str:
    if cut is None or cut >= len(tokens):
        return decode(tokens)
    left, right = decode(tokens[:cut]), decode(tokens[cut:])
    if left[-1:].isspace() or right[:1].isspace():
        return left + MISMATCH_MARK + right
    return f"{left} {MISMATCH_MARK} {right}"  # word-level tokenizers decode without spaces


def scored_texts(
    model: str,
    revision: str | None = None,
    *,
    memorized: bool = False,
    near_misses: bool = False,
    limit: int | None = 10,
    db: str | os.PathLike | None = None,
    tokenizer: Any = "auto",
    dataset: str | None = None,
) -> list[ScoredText]:
    """Sequences of one unit as text, longest matches first: the memorized ones
    (`memorized=True`), the longest matches that are not memorized (`near_misses=True`: they
    show where decoding departs), or all. `tokenizer`: "auto" loads the
    unit's own, None prints token ids, a path or a tokenizer object is used as given.
    `dataset`: needed when the checkpoint was scored on several datasets."""
    if limit is not None and limit < 1:
        raise MemwhError("--limit must be >= 1")
    model, revision, model_path, dataset = _unit(model, revision, db, dataset)
    where = (
        f"model = {_quote(model)} AND revision = {_quote(revision)} AND dataset = {_quote(dataset)}"
    )
    if memorized and near_misses:
        raise MemwhError("--memorized and --near-misses exclude each other: pick one")
    if memorized:
        where += " AND is_memorized"
    if near_misses:
        where += " AND NOT is_memorized"
    rows = sql(
        "SELECT * FROM scored_windows WHERE " + where + " ORDER BY is_memorized DESC, "
        "prefix_match_len DESC, seq_idx" + (f" LIMIT {int(limit)}" if limit else ""),
        db,
    )
    if rows.height and not rows["has_tokens"].any():
        raise MemwhError(
            f"{model}@{revision}: its token windows are not in the warehouse; rerun the same "
            "`memwh infer` command (a complete shard then only writes its windows), then "
            "`memwh ingest` (not with --windows none)"
        )
    if tokenizer == "auto":
        tokenizer = load_unit_tokenizer(model_path, revision)
    elif isinstance(tokenizer, str | os.PathLike):
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer))
        except (OSError, ValueError) as e:
            raise MemwhError(f"--tokenizer {tokenizer}: cannot load ({e})") from None
    decode = _decoder(tokenizer)
    out = []
    for r in rows.iter_rows(named=True):
        t = ScoredText(
            model=model,
            revision=revision,
            seq_idx=r["seq_idx"],
            is_memorized=bool(r["is_memorized"]),
            prefix_match_len=r["prefix_match_len"],
            cont_len=r["cont_len"],
            first_mismatch=r["first_mismatch"],
            memorization_score=r["memorization_score"],
            duplicates=r["duplicates"],
            is_canary=r["is_canary"],
            prompt_tokens=r["prompt_tokens"],
            continuation_tokens=r["continuation_tokens"],
            generated_tokens=r["generated_tokens"],
            as_ids=tokenizer is None,
            label_certain=r.get("label_certain"),
            label_verified=r.get("label_verified"),
            dataset=dataset,
        )
        if t.prompt_tokens is not None:
            t.prompt = decode(t.prompt_tokens)
            t.continuation = _marked(t.continuation_tokens, t.first_mismatch, decode)
        if t.generated_tokens is not None:
            t.generation = _marked(t.generated_tokens, t.first_mismatch, decode)
        out.append(t)
    return out


def render(texts: list[ScoredText]) -> str:
    """Plain text, one block per sequence (what `memwh show` prints)."""
    blocks = []
    for t in texts:
        head = [f"seq_idx {t.seq_idx}", "memorized" if t.is_memorized else "not memorized"]
        if t.label_certain is False:
            head[-1] += f" {UNCERTAIN_MARK}"
        elif t.label_verified:
            head[-1] += " (fp32-verified)"
        if t.prefix_match_len is not None:
            head.append(f"prefix match {t.prefix_match_len}/{t.cont_len}")
        if t.memorization_score is not None:
            head.append(f"score {t.memorization_score:.3f}")
        if t.duplicates is not None:
            head.append(f"{t.duplicates} cop{'y' if t.duplicates == 1 else 'ies'}")
        if t.is_canary:
            head.append("canary")
        mismatch = (
            f"first mismatch at continuation token {t.first_mismatch} ({MISMATCH_MARK})"
            if t.first_mismatch is not None
            else f"no mismatch: all {t.cont_len} continuation tokens match"
        )
        lines = [f"── {t.model}@{t.revision} · " + " · ".join(head), f"   {mismatch}"]
        if t.prompt is None:
            lines.append("   (no token window stored for this sequence)")
        else:
            lines.append(f"   prompt:       {t.prompt}")
            lines.append(f"   continuation: {t.continuation}")
            if t.generation is not None:
                lines.append(f"   generation:   {t.generation}")
        blocks.append("\n".join(lines))
    if any(t.label_certain is False for t in texts):
        blocks.append(
            f"{UNCERTAIN_MARK} label uncertain under the run's dtype: a near tie before the "
            "first mismatch could change it in fp32 (`memwh infer --verify` checks it in fp32)"
        )
    if any(t.as_ids for t in texts):
        blocks.insert(0, "(no tokenizer found for this unit: token ids shown)")
    return "\n\n".join(blocks) if blocks else "(no sequences)"
