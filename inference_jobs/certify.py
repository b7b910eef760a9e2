"""Certified labels: is a greedy label the same as a full-precision run would give?

A label (the matched-prefix length, hence exact match under any threshold) is decided by the
argmax at the continuation positions up to and including the first mismatch (STUDIES.md section 9).
The label changes only if, at one of those positions, "argmax == true token" changes. Where
the argmax is the true token that needs another token to overtake it: the *gap* is top-1 minus
top-2; at the first mismatch it needs the true token to overtake the argmax: the gap is top-1
minus the true token's logit (a tie between two wrong tokens changes no label). If the
low-precision logits are ``z~ = z + e`` with ``|e_v| <= E`` for every token v, a difference of
two logits moves by at most ``2 E``, so a position is *certain* when

    gap > tolerance = KAPPA * u * scale

* ``u``: the dtype's unit roundoff, ``2 ** -(mantissa bits + 1)``: bf16 2^-8, fp16 2^-11,
  fp32 2^-24;
* ``scale``: the largest absolute logit at the position (max |z~_v| over the vocabulary, before
  the EOS processor): rounding errors of a forward pass grow with the magnitude of what it
  computes, so the error of the logits is a multiple of ``u * scale``;
* ``KAPPA = 2 * C`` where C bounds ``max_v |e_v| / (u * scale)``. Measured against fp32 on tiny
  GPT-NeoX models trained on random rows (2 layers, bf16 and fp16 alike): median 2.9, 99th
  percentile 5.5, max 9.5 (benchmarks/bench_certify.py reports it for every run as
  ``error_ratio``). C = 16 leaves ~1.7x headroom over the largest error seen, so KAPPA = 32.
  The gap error itself (difference of two logits, what KAPPA must exceed) reached 16.5 over
  five such models (benchmarks/bench_certify_scales.py, which also shows that scales built
  from the two compared logits or from the hidden state and head rows certify no more labels).
  Deeper models accumulate more rounding error: the benchmark's ``error_ratio`` is the
  check to rerun on a new model family (and ``--verify`` only ever makes labels more exact).

A sequence's label is certain when every deciding position is. ``--verify`` checks the
uncertain labels with an fp32 pass over the deciding positions and re-scores in fp32 the rows
whose label changed (runner.verify_rows, scoring.check_labels).
"""

from __future__ import annotations

from typing import Any

import torch

KAPPA = 32.0


def unit_roundoff(dtype: Any) -> float:
    """2^-(mantissa bits + 1) of a floating torch dtype (bf16 2^-8, fp16 2^-11, fp32 2^-24)."""
    return float(torch.finfo(dtype).eps) / 2.0


def tolerance_rule(dtype: Any) -> dict[str, Any]:
    """What the manifest records about the tolerance (so a reader can recompute it)."""
    return {
        "rule": "top1 - top2 logit gap > kappa * unit_roundoff * max|logit| at every deciding position",
        "kappa": KAPPA,
        "unit_roundoff": unit_roundoff(dtype),
        "dtype": str(dtype).removeprefix("torch."),
    }


def scale_of(logits: torch.Tensor) -> torch.Tensor:
    """max |logit| per position (fp32), without materialising |logits| (amax and amin are
    each cheaper than one aminmax pass on CPU)."""
    return torch.maximum(logits.amax(dim=-1).float().abs(), logits.amin(dim=-1).float().abs())


def tolerance(scale: torch.Tensor, dtype: Any) -> torch.Tensor:
    return scale * (KAPPA * unit_roundoff(dtype))


def truth_gap(processed: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """|logit of the true token - best logit of any other token| per position (fp32):
    where the argmax is the truth, top-1 minus top-2; where it is not, top-1 minus the truth's
    logit (only the truth becoming the argmax could change the label there)."""
    return argmax_and_gap(processed.clone(), truth)[1]


def argmax_and_gap(
    processed: torch.Tensor, truth: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(argmax, `truth_gap`) per position in two passes over the vocabulary (max, then max with
    the top-1 masked): cheaper than argmax + topk. Overwrites `processed` (its top-1 logit
    becomes -inf): pass logits that are not needed afterwards. Ties resolve as torch.argmax
    (first index) and give a gap of 0."""
    top1, idx = processed.max(dim=-1)
    z_truth = processed.gather(-1, truth.unsqueeze(-1)).squeeze(-1)
    processed.scatter_(-1, idx.unsqueeze(-1), float("-inf"))
    top2 = processed.amax(dim=-1)
    other = torch.where(idx == truth, top2, top1)
    return idx, (z_truth.float() - other.float()).abs()


def label_certainty(
    gaps: torch.Tensor, tols: torch.Tensor, prefix: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row of [B, C] gaps/tolerances with matched-prefix lengths [B]: (smallest gap over the
    deciding positions 0..min(prefix, C - 1), whether every deciding gap exceeds its tolerance)."""
    c = gaps.shape[1]
    pos = torch.arange(c, device=gaps.device)
    deciding = pos[None, :] <= prefix.clamp(max=c - 1).to(pos.dtype)[:, None]
    inf = torch.full_like(gaps, float("inf"))
    margin = torch.where(deciding, gaps, inf).amin(dim=1)
    certain = torch.where(deciding, gaps > tols, torch.ones_like(deciding)).all(dim=1)
    return margin, certain
