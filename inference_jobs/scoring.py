"""The two scoring paths and the per-sequence metrics.

Fast mode = ONE teacher-forced forward pass over ``prompt + continuation[:-1]`` with logits
computed only for the last ``cont_len`` positions (``logits_to_keep``). Under greedy decoding the
generated token equals the teacher-forced argmax at every position up to and including the first
position where that argmax differs from the truth, so the matched-prefix length and the exact-match
label are exact from this one pass.

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
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

MIN_K_FRACTION = 0.2


@dataclass
class BatchScores:
    """Per-sequence results of one batch (numpy arrays of length B)."""

    prefix_match_len: np.ndarray
    exact_match: np.ndarray
    memorization_score: np.ndarray | None
    tf_token_accuracy: np.ndarray
    loss: np.ndarray
    min_k_logprob: np.ndarray
    zlib_ratio: np.ndarray | None
    generated: np.ndarray | None = None


def process_logits(logits: torch.Tensor, suppress_ids: list[int]) -> torch.Tensor:
    """The logits processor shared by both paths: EOS suppression sets those logits to -inf."""
    if suppress_ids:
        logits = logits.clone()
        logits[..., suppress_ids] = float("-inf")
    return logits


def prefix_len(matches: torch.Tensor) -> torch.Tensor:
    """Number of leading True values per row of a [B, C] bool tensor."""
    return matches.to(torch.int32).cumprod(dim=1).sum(dim=1)


def teacher_forced(
    model: Any, tokens: torch.Tensor, prompt_len: int, cont_len: int
) -> torch.Tensor:
    """Logits [B, cont_len, V] predicting tokens[:, prompt_len:prompt_len+cont_len] in one pass."""
    inp = tokens[:, : prompt_len + cont_len - 1]
    out = model(input_ids=inp, use_cache=False, logits_to_keep=cont_len)
    return out.logits


@torch.inference_mode()
def greedy_generate(
    model: Any, prompt: torch.Tensor, cont_len: int, suppress_ids: list[int]
) -> torch.Tensor:
    """Greedy decoding with a KV cache: [B, cont_len] generated token ids (never stops early)."""
    out = model(input_ids=prompt, use_cache=True, logits_to_keep=1)
    past = out.past_key_values
    nxt = process_logits(out.logits[:, -1, :], suppress_ids).argmax(dim=-1)
    gen = [nxt]
    for _ in range(cont_len - 1):
        out = model(input_ids=nxt[:, None], past_key_values=past, use_cache=True, logits_to_keep=1)
        past = out.past_key_values
        nxt = process_logits(out.logits[:, -1, :], suppress_ids).argmax(dim=-1)
        gen.append(nxt)
    return torch.stack(gen, dim=1)


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


@torch.inference_mode()
def score_batch(
    model: Any,
    tokens: np.ndarray,
    prompt_len: int,
    cont_len: int,
    *,
    mode: str = "fast",
    suppress_ids: list[int] | None = None,
    tokenizer: Any = None,
    device: str = "cpu",
    save_generations: bool = False,
) -> BatchScores:
    """Score a batch of [B, >= prompt_len + cont_len] token windows."""
    suppress_ids = suppress_ids or []
    x = torch.as_tensor(
        np.ascontiguousarray(tokens[:, : prompt_len + cont_len]), dtype=torch.long, device=device
    )
    truth = x[:, prompt_len:]
    logits = teacher_forced(model, x, prompt_len, cont_len)
    pred = process_logits(logits, suppress_ids).argmax(dim=-1)
    tf_match = pred == truth
    logp = torch.log_softmax(logits.float(), dim=-1)
    tok_lp = logp.gather(-1, truth.unsqueeze(-1)).squeeze(-1)
    del logp, logits
    loss = (-tok_lp.mean(dim=1)).cpu().numpy().astype(np.float32)
    mink = min_k_logprob(tok_lp).cpu().numpy().astype(np.float32)
    acc = tf_match.float().mean(dim=1).cpu().numpy().astype(np.float32)
    generated = None
    mem_score = None
    if mode == "fast":
        plen = prefix_len(tf_match)
    elif mode == "generate":
        gen = greedy_generate(model, x[:, :prompt_len], cont_len, suppress_ids)
        gmatch = gen == truth
        plen = prefix_len(gmatch)
        mem_score = gmatch.float().mean(dim=1).cpu().numpy().astype(np.float32)
        if save_generations:
            generated = gen.cpu().numpy().astype(np.int32)
    else:
        raise ValueError(f"unknown mode {mode!r}")
    plen_np = plen.cpu().numpy().astype(np.int16)
    return BatchScores(
        prefix_match_len=plen_np,
        exact_match=plen_np == cont_len,
        memorization_score=mem_score,
        tf_token_accuracy=acc,
        loss=loss,
        min_k_logprob=mink,
        zlib_ratio=zlib_ratios(loss, tokens[:, prompt_len : prompt_len + cont_len], tokenizer),
        generated=generated,
    )
