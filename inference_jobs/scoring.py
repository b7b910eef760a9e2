"""The two scoring paths and the per-sequence metrics.

Fast mode = ONE teacher-forced forward pass over ``prompt + continuation[:-1]`` with logits
computed only for the last ``cont_len`` positions (``logits_to_keep``). Under greedy decoding the
generated token equals the teacher-forced argmax at every position up to and including the first
position where that argmax differs from the truth, so the matched-prefix length and the exact-match
label are exact from this one pass.

Several prompt lengths k_1 < ... < K share that pass: it runs over ``K + cont_len - 1`` tokens
and computes logits only for the union of the continuation windows [k, k + cont_len), so
prompt length k reads its window from the same logits (every context length for the price of
the longest; STUDIES.md section 8). Causal attention makes the prediction at position t depend only
on tokens < t, so each k's rows equal a separate run with prompt length k (up to float summation
order; tests/inference/test_multi_prompt.py compares them with generate mode).

Generate mode = greedy decoding with a KV cache for ``cont_len`` tokens. EOS is an ordinary token
here: decoding never stops early, so all ``cont_len`` positions are always scored (with
``suppress_eos`` the EOS logit is -inf at every position, like Pythia's ``min_length``).

Both paths apply the SAME logits processor (`process_logits`) before the argmax; the per-token
metrics use the raw log-softmax (no processor) of the teacher-forced pass:

* ``loss``            mean NLL (nats) of the continuation tokens;
* ``min_k_logprob``   Min-K% Prob: mean of the lowest ``max(1, int(K * cont_len))`` token
                      log-probs, K = 0.2 (mimir's rounding);
* ``tf_token_accuracy`` fraction of continuation positions whose processed argmax == truth;
* ``zlib_ratio``      ``loss / len(zlib.compress(utf8(decode(continuation))))`` (mimir's zlib
                      attack restricted to the continuation; NULL without a tokenizer).

Argmax ties resolve to the lowest token id (torch.argmax); the equivalence tests use fp32 where
ties between distinct logits are practically absent.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch

from . import certify

MIN_K_FRACTION = 0.2


@dataclass
class BatchScores:
    """Per-row results of one batch (numpy arrays of length B * len(prompt_lens)); rows are
    sequence-major: row ``i * K + j`` is sequence i scored with the j-th prompt length."""

    prompt_len: np.ndarray
    prefix_match_len: np.ndarray
    exact_match: np.ndarray
    memorization_score: np.ndarray | None
    tf_token_accuracy: np.ndarray
    loss: np.ndarray
    min_k_logprob: np.ndarray
    zlib_ratio: np.ndarray | None
    label_margin: np.ndarray  # smallest top-1 - top-2 gap over the deciding positions
    label_certain: np.ndarray  # every deciding gap > the dtype's tolerance (certify.py)
    generated: np.ndarray | None = None


def concat_scores(parts: list[BatchScores]) -> BatchScores:
    """The BatchScores of consecutive slices of one batch, as one (rows in slice order)."""
    if len(parts) == 1:
        return parts[0]
    out = {}
    for f in fields(BatchScores):
        vals = [getattr(p, f.name) for p in parts]
        out[f.name] = None if vals[0] is None else np.concatenate(vals)
    return BatchScores(**out)


def process_logits(
    logits: torch.Tensor, suppress_ids: list[int], *, inplace: bool = False
) -> torch.Tensor:
    """The logits processor shared by both paths: EOS suppression sets those logits to -inf
    (in place when the caller no longer needs the raw logits: no copy of [B, L, V])."""
    if suppress_ids:
        if not inplace:
            logits = logits.clone()
        logits[..., suppress_ids] = float("-inf")
    return logits


def prefix_len(matches: torch.Tensor) -> torch.Tensor:
    """Number of leading True values per row of a [B, C] bool tensor."""
    return matches.to(torch.int32).cumprod(dim=1).sum(dim=1)


def teacher_forced(
    model: Any, tokens: torch.Tensor, prompt_len: int | Sequence[int], cont_len: int
) -> tuple[torch.Tensor, list[int]]:
    """One pass over ``max(prompt_len) + cont_len - 1`` tokens; logits only at the input
    positions predicting some prompt length's continuation window [k, k + cont_len).

    Returns (logits [B, L, V], positions): logits[:, j] predicts token positions[j] + 1. One
    prompt length (or windows that tile the end) keeps the last L positions; separate windows
    (e.g. 32 and 256 with cont_len 32) keep only their union, so the head and the softmax cost
    what the windows need (STUDIES.md section 8)."""
    lens = as_prompt_lens(prompt_len)
    n_in = lens[-1] + cont_len - 1
    pos = sorted(set().union(*(range(k - 1, k + cont_len - 1) for k in lens)))
    tail = pos == list(range(n_in - len(pos), n_in))
    keep: int | torch.Tensor = (
        len(pos) if tail else torch.as_tensor(pos, dtype=torch.long, device=tokens.device)
    )
    out = model(input_ids=tokens[:, :n_in], use_cache=False, logits_to_keep=keep)
    return out.logits, pos


def token_logprobs(logits: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """log p(truth) per position from raw logits ([B, L, V], [B, L] -> fp32 [B, L]), without
    materialising the whole log-softmax (logit of the truth minus logsumexp)."""
    lf = logits.float()
    return lf.gather(-1, truth.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(lf, dim=-1)


@torch.inference_mode()
def greedy_generate(
    model: Any,
    prompt: torch.Tensor,
    cont_len: int,
    suppress_ids: list[int],
    truth: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Greedy decoding with a KV cache, never stopping early: ([B, cont_len] generated token
    ids, each step's gap between the true token [B, cont_len] and its best rival (None without
    `truth`), each step's rounding tolerance; certify.py).

    Uses transformers' ``cache=`` argument and ``.cache`` output (``past_key_values`` is
    deprecated since transformers 5.x and removed in 5.40)."""
    gen, gaps, tols = [], [], []
    out = model(input_ids=prompt, use_cache=True, logits_to_keep=1)
    for step in range(cont_len):
        if step:
            out = model(
                input_ids=gen[-1][:, None], cache=out.cache, use_cache=True, logits_to_keep=1
            )
        logits = out.logits[:, -1, :]
        tols.append(certify.tolerance(certify.scale_of(logits), logits.dtype))
        logits = process_logits(logits, suppress_ids, inplace=True)
        if truth is not None:
            nxt, gap = certify.argmax_and_gap(logits, truth[:, step])  # overwrites logits
            gaps.append(gap)
        else:
            nxt = logits.argmax(dim=-1)
        gen.append(nxt)
    gap = torch.stack(gaps, dim=1) if gaps else None
    return torch.stack(gen, dim=1), gap, torch.stack(tols, dim=1)


def min_k_logprob(token_logprobs: torch.Tensor, fraction: float = MIN_K_FRACTION) -> torch.Tensor:
    """Mean of the lowest max(1, int(fraction * C)) token log-probs per row ([B, C] -> [B])."""
    k = max(1, int(token_logprobs.shape[1] * fraction))
    low = torch.topk(token_logprobs, k, dim=1, largest=False).values
    return low.mean(dim=1)


def zlib_ratios(loss: np.ndarray, cont_tokens: np.ndarray, tokenizer: Any) -> np.ndarray | None:
    """loss / zlib-compressed byte length of the decoded continuation (mimir's definition)."""
    if tokenizer is None:
        return None
    texts = tokenizer.batch_decode(cont_tokens.tolist())
    lens = np.array([len(zlib.compress(t.encode("utf-8"))) for t in texts], dtype=np.float64)
    return (loss / lens).astype(np.float32)


def as_prompt_lens(prompt_len: int | Sequence[int]) -> tuple[int, ...]:
    lens = (prompt_len,) if isinstance(prompt_len, int) else tuple(prompt_len)
    return tuple(sorted(set(int(k) for k in lens)))


@torch.inference_mode()
def score_batch(
    model: Any,
    tokens: np.ndarray,
    prompt_len: int | Sequence[int],
    cont_len: int,
    *,
    mode: str = "fast",
    suppress_ids: list[int] | None = None,
    tokenizer: Any = None,
    device: str = "cpu",
    save_generations: bool = False,
) -> BatchScores:
    """Score a batch of [B, >= max(prompt_len) + cont_len] token windows at every prompt length.

    One teacher-forced pass over ``max(prompt_len) + cont_len - 1`` tokens gives, for each
    prompt length k, the predictions of tokens [k, k + cont_len): the per-token metrics and (fast
    mode) the matched prefix, the run of argmax == truth starting at position k, capped at
    cont_len. Generate mode decodes once per prompt length from tokens [0, k)."""
    if mode not in ("fast", "generate"):
        raise ValueError(f"unknown mode {mode!r}")
    suppress_ids = suppress_ids or []
    lens = as_prompt_lens(prompt_len)
    kmax, m = lens[-1], cont_len
    x = torch.as_tensor(
        np.ascontiguousarray(tokens[:, : kmax + m]), dtype=torch.long, device=device
    )
    logits, pos = teacher_forced(model, x, lens, m)
    truth_all = x[:, torch.as_tensor(pos, device=x.device) + 1]
    lp_all = token_logprobs(logits, truth_all)  # raw distribution, before the processor
    tol_all = certify.tolerance(certify.scale_of(logits), logits.dtype)
    logits = process_logits(logits, suppress_ids, inplace=True)
    argmax, gap_all = certify.argmax_and_gap(logits, truth_all)  # overwrites logits
    match_all = argmax == truth_all
    del logits
    b, nk = x.shape[0], len(lens)
    plen = torch.empty((b, nk), dtype=torch.int32, device=x.device)
    loss, mink, acc, margin = (
        torch.empty((b, nk), dtype=torch.float32, device=x.device) for _ in range(4)
    )
    certain = torch.empty((b, nk), dtype=torch.bool, device=x.device)
    mem = torch.empty((b, nk), dtype=torch.float32, device=x.device) if mode == "generate" else None
    gens = []
    for j, k in enumerate(lens):
        w = slice(pos.index(k - 1), pos.index(k - 1) + m)
        tf_match, tok_lp = match_all[:, w], lp_all[:, w]
        loss[:, j] = -tok_lp.mean(dim=1)
        mink[:, j] = min_k_logprob(tok_lp)
        acc[:, j] = tf_match.float().mean(dim=1)
        if mem is None:
            plen[:, j] = prefix_len(tf_match)
            gaps, tols = gap_all[:, w], tol_all[:, w]
        else:
            truth = x[:, k : k + m]
            gen, gaps, tols = greedy_generate(model, x[:, :k], m, suppress_ids, truth)
            gmatch = gen == truth
            plen[:, j] = prefix_len(gmatch)
            mem[:, j] = gmatch.float().mean(dim=1)
            gens.append(gen)
        margin[:, j], certain[:, j] = certify.label_certainty(gaps, tols, plen[:, j])
    plen_np = plen.cpu().numpy().astype(np.int16).ravel()
    loss_np = loss.cpu().numpy().ravel()
    cont = np.stack([tokens[:, k : k + m] for k in lens], axis=1).reshape(b * nk, m)
    generated = None
    if save_generations and gens:
        generated = torch.stack(gens, dim=1).reshape(b * nk, m).cpu().numpy().astype(np.int32)
    return BatchScores(
        prompt_len=np.tile(np.asarray(lens, dtype=np.int16), b),
        prefix_match_len=plen_np,
        exact_match=plen_np == m,
        memorization_score=None if mem is None else mem.cpu().numpy().ravel(),
        tf_token_accuracy=acc.cpu().numpy().ravel(),
        loss=loss_np,
        min_k_logprob=mink.cpu().numpy().ravel(),
        zlib_ratio=zlib_ratios(loss_np, cont, tokenizer),
        label_margin=margin.cpu().numpy().ravel(),
        label_certain=certain.cpu().numpy().ravel(),
        generated=generated,
    )


@dataclass
class LabelCheck:
    """`check_labels`' answer per row: whether the full-precision pass gives the same matched
    prefix, and that pass's certificate (margin, certain) over the same deciding positions."""

    same: np.ndarray
    label_margin: np.ndarray
    label_certain: np.ndarray


@torch.inference_mode()
def check_labels(
    model: Any,
    tokens: np.ndarray,
    prompt_len: int,
    cont_len: int,
    prefix: np.ndarray,
    *,
    suppress_ids: list[int] | None = None,
    device: str = "cpu",
) -> LabelCheck:
    """Does `model` give the matched-prefix lengths `prefix` to these [B, >= prompt_len +
    cont_len] windows? (--verify, certify.py.)

    A matched prefix p is decided by the argmax at continuation positions 0..min(p, m - 1)
    (STUDIES.md section 9; greedy decoding equals the teacher-forced argmax up to and including
    the first mismatch, so this answers for generate mode too). One teacher-forced pass over
    ``prompt_len + d - 1`` tokens, d the largest number of deciding positions in the batch,
    decides it: far cheaper than re-scoring (no tokens after the first mismatch, no decoding)."""
    m = cont_len
    p = torch.as_tensor(np.asarray(prefix, dtype=np.int64), device=device)
    d = torch.clamp(p, max=m - 1) + 1
    dmax = int(d.max())
    x = torch.as_tensor(
        np.ascontiguousarray(tokens[:, : prompt_len + dmax]), dtype=torch.long, device=device
    )
    logits = model(input_ids=x[:, : prompt_len + dmax - 1], use_cache=False, logits_to_keep=dmax)
    logits = logits.logits
    truth = x[:, prompt_len : prompt_len + dmax]
    tols = certify.tolerance(certify.scale_of(logits), logits.dtype)
    logits = process_logits(logits, suppress_ids or [], inplace=True)
    argmax, gaps = certify.argmax_and_gap(logits, truth)  # overwrites logits
    deciding = torch.arange(dmax, device=device)[None, :] < d[:, None]
    got = prefix_len((argmax == truth) & deciding)
    margin, certain = certify.label_certainty(gaps, tols, p)
    return LabelCheck(
        same=(got == p).cpu().numpy(),
        label_margin=margin.cpu().numpy(),
        label_certain=certain.cpu().numpy(),
    )
