"""Benchmark: which per-position scale makes the tightest honest tolerance for certified labels?

    python -m benchmarks.bench_certify_scales

certify.py's tolerance is KAPPA * u * scale with scale = max|logit| at the position. The label
at a position depends on the gap between two logits a (the argmax) and b (top-2, or the truth at
the first mismatch), so other scales are candidates: max(|z_a|, |z_b|) (the two compared
logits), ||h|| * ||W_a - W_b|| (hidden state entering the head times the difference of the two
head rows: Cauchy-Schwarz on z_a - z_b = h . (W_a - W_b)), ||h|| * (||W_a|| + ||W_b||), and
sum_i |h_i| |W_ai - W_bi|. For each, over five tiny GPT-NeoX models trained on 256 random rows
(tests/inference/helpers.train_memorizer; seeds 0-2, 15-80 epochs; 512 rows scored: 256 trained
+ 256 fresh, prompt 32 + 32, EOS suppressed, bf16 vs fp32, CPU): the largest and 99th-percentile
|gap(bf16) - gap(fp32)| / (u * scale) over every continuation position, KAPPA = 2 x the largest
(the headroom certify.py keeps), and the share of labels left uncertain at that KAPPA (fewer
uncertain labels = less for --verify to check) with the flips it would miss.
Writes benchmarks/results/certify_scales.{json,md}.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.bench_inference import write_results
from memwh.inference_jobs import certify
from memwh.inference_jobs.scoring import prefix_len

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "inference"))
import helpers

K = M = 32
MODELS = ((0, 30), (0, 80), (1, 15), (1, 45), (2, 30))  # (seed, epochs)
SCALES = ("max_abs_logit", "pair_abs_logit", "hnorm_wdiff", "hnorm_wsum", "habs_wdiff")


def _measure(path: Path, toks: np.ndarray) -> dict[str, Any]:
    """Per continuation position: gap error, bf16 gap, each scale; deciding mask; flips."""
    from transformers import AutoModelForCausalLM

    x = torch.as_tensor(toks[:, : K + M - 1])
    truth = torch.as_tensor(toks[:, K : K + M])
    out = {}
    for dt in (torch.float32, torch.bfloat16):
        m = AutoModelForCausalLM.from_pretrained(path, dtype=dt).eval()
        head = m.get_output_embeddings()
        cap: dict[str, torch.Tensor] = {}
        hook = head.register_forward_pre_hook(lambda _m, a, cap=cap: cap.__setitem__("h", a[0]))
        with torch.inference_mode():
            z = m(input_ids=x, logits_to_keep=M).logits
        hook.remove()
        out[dt] = (z, cap["h"].float(), head.weight.detach().float())
    z32, _, _ = out[torch.float32]
    z16, h, w = out[torch.bfloat16]
    raw16 = z16.float()
    z32, z16 = z32.clone(), z16.clone()
    z32[..., 0] = z16[..., 0] = float("-inf")  # EOS suppressed, as in the runs
    a = z16.argmax(-1)
    masked = z16.clone()
    masked.scatter_(-1, a[..., None], float("-inf"))
    b = torch.where(a == truth, masked.argmax(-1), truth)

    def pick(z: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        return z.gather(-1, i[..., None])[..., 0].float()

    g16, g32 = pick(z16, a) - pick(z16, b), pick(z32, a) - pick(z32, b)
    wa, wb, hn = w[a], w[b], h.norm(dim=-1)
    scales = {
        "max_abs_logit": certify.scale_of(raw16),
        "pair_abs_logit": torch.maximum(pick(raw16, a).abs(), pick(raw16, b).abs()),
        "hnorm_wdiff": hn * (wa - wb).norm(dim=-1),
        "hnorm_wsum": hn * (wa.norm(dim=-1) + wb.norm(dim=-1)),
        "habs_wdiff": (h.abs() * (wa - wb).abs()).sum(-1),
    }
    pml16 = prefix_len(a == truth)
    pml32 = prefix_len(z32.argmax(-1) == truth)
    deciding = torch.arange(M)[None, :] <= pml16.clamp(max=M - 1)[:, None]
    return {
        "err": (g16 - g32).abs(), "gap": g16.abs(), "scales": scales, "deciding": deciding,
        "flips": pml16 != pml32, "memorized_fp32": int((pml32 == M).sum()),
    }  # fmt: skip


def run() -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    u = certify.unit_roundoff(torch.bfloat16)
    per_model: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed, ep in MODELS:
            path, trained = helpers.train_memorizer(
                Path(tmp) / f"s{seed}-e{ep}", n_rows=256, epochs=ep, seed=seed
            )
            fresh = np.random.default_rng(1).integers(3, helpers.VOCAB, size=(256, 64))
            per_model[f"seed {seed}, {ep} epochs"] = _measure(
                path, np.concatenate([trained, fresh])
            )
    res: dict[str, Any] = {"models": {}, "scales": {}}
    for name, r in per_model.items():
        res["models"][name] = {
            "labels": int(r["flips"].numel()), "memorized_fp32": r["memorized_fp32"],
            "flips": int(r["flips"].sum()),
        }  # fmt: skip
    for s in SCALES:
        ratios = {n: r["err"] / (u * r["scales"][s]) for n, r in per_model.items()}
        worst = max(float(v.max()) for v in ratios.values())
        kappa = 2 * worst
        entry: dict[str, Any] = {"error_ratio_max": round(worst, 3), "kappa": round(kappa, 2)}
        for n, r in per_model.items():
            unc = ((r["gap"] <= kappa * u * r["scales"][s]) & r["deciding"]).any(dim=1)
            entry[n] = {
                "error_ratio_p99": round(float(ratios[n].quantile(0.99)), 2),
                "uncertain_share": round(float(unc.float().mean()), 4),
                "flips_missed": int((r["flips"] & ~unc).sum()),
            }
        res["scales"][s] = entry
    res.update(
        torch_threads=torch.get_num_threads(),
        load_average_1m=[round(load_before, 2), round(os.getloadavg()[0], 2)],
    )
    return res


def to_markdown(r: dict[str, Any]) -> str:
    names = list(r["models"])
    lines = [
        "# Certified labels: tolerance scales (CPU, bf16 vs fp32)",
        "",
        "Five tiny GPT-NeoX (hidden 64, 2 layers, vocab 256) trained on 256 random rows; 512 "
        "rows scored (256 trained + 256 fresh), prompt 32 + 32, EOS suppressed; "
        f"{r['torch_threads']} torch thread(s), 1-minute load average before/after "
        f"{r['load_average_1m'][0]}/{r['load_average_1m'][1]} on {os.cpu_count()} cores.",
        "",
        "| model | memorized (fp32) | flips bf16 vs fp32 |",
        "|---|---:|---:|",
        *(f"| {n} | {m['memorized_fp32']} | {m['flips']} |" for n, m in r["models"].items()),
        "",
        "KAPPA = 2 × the largest |gap(bf16) − gap(fp32)| / (u · scale) over all models and "
        "positions; uncertain share of labels at that KAPPA (flips missed in brackets):",
        "",
        "| scale | error ratio max | KAPPA | " + " | ".join(names) + " |",
        "|---|---:|---:|" + "---:|" * len(names),
    ]
    for s, e in r["scales"].items():
        cells = [f"{e[n]['uncertain_share']:.1%} ({e[n]['flips_missed']})" for n in names]
        lines.append(f"| {s} | {e['error_ratio_max']} | {e['kappa']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    torch.set_num_threads(1)
    r = run()
    write_results("certify_scales", r, to_markdown(r))


if __name__ == "__main__":
    main()
