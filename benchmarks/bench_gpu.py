"""Benchmark for real GPUs: fast vs generate vs Pythia's no-cache method, bf16 and fp16.

    python -m benchmarks.bench_gpu [--device auto] [--n N] [--batch-size B] [--peak-tflops T]

Given CUDA: a random-init GPT-NeoX of Pythia-410m's shape (hidden 1024, 24 layers, 16 heads,
FFN 4096, vocab 50304, rotary 25%, parallel residual); on CPU (no CUDA) a tiny shape (hidden 64,
2 layers, vocab 512) so a test can run the whole script. Prompt 32, continuation 32, EOS
suppressed, in bf16 and fp16. Sequences: 1/3 the model's own greedy continuation in that dtype
(exact matches), 1/3 that continuation with a changed tail, 1/3 random tokens.

Methods, on the same sequences and batch size, each timed once after a warm-up batch
(CUDA-synchronised):
* fast      `score_batch(mode="fast")`: one teacher-forced pass + every metric (memwh's default);
* generate  `score_batch(mode="generate")`: KV-cache greedy decoding + the same metrics;
* pythia    HF ``generate(max_length=64, min_length=64, use_cache=False)``: Pythia's eval call
            (every step recomputes the prefix; min_length blocks EOS).

Reported per dtype and method: seq/s, achieved TFLOP/s (analytic forward FLOPs actually executed,
recomputation included; bench_inference.method_flops) and MFU = that / the peak. The peak is
`--peak-tflops` when given (the card's spec sheet, e.g. 312 for A100 bf16), else a dense
matmul measured here in the same dtype (then MFU is relative to what this device reaches).
Label agreement: matched-prefix labels of the three methods compared; in 16-bit floats an
argmax near a tie may legitimately differ between methods (STUDIES.md section 9), so the
disagreements are also checked against fast mode's certificate (label_certain false).
Writes benchmarks/results/gpu.{json,md} (or --out DIR).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.bench_inference import RESULTS, method_flops
from memwh.inference_jobs.models import device_name
from memwh.inference_jobs.scoring import greedy_generate, prefix_len, score_batch

P, C = 32, 32
SHAPES = {
    "pythia-410m": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16,
                    "intermediate_size": 4096, "vocab_size": 50304},
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
             "intermediate_size": 256, "vocab_size": 512},
}  # fmt: skip
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def make_model(shape: str, dtype: torch.dtype, device: str) -> Any:
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    cfg = GPTNeoXConfig(
        **SHAPES[shape], max_position_embeddings=2048, rotary_pct=0.25, use_parallel_residual=True,
        tie_word_embeddings=False, bos_token_id=0, eos_token_id=0, pad_token_id=1,
    )  # fmt: skip
    torch.manual_seed(0)
    return GPTNeoXForCausalLM(cfg).to(device=device, dtype=dtype).eval()


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_peak_tflops(dtype: torch.dtype, device: str, n: int) -> float:
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    best = float("inf")
    for _ in range(10):
        t = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e12


@torch.inference_mode()
def make_sequences(model: Any, n: int, batch: int, device: str) -> np.ndarray:
    vocab = model.config.vocab_size
    rng = np.random.default_rng(0)
    prompts = torch.as_tensor(rng.integers(3, vocab, size=(n, P)), device=device)
    gen = torch.cat(
        [greedy_generate(model, prompts[i : i + batch], C, [0])[0] for i in range(0, n, batch)]
    )
    toks = torch.cat([prompts, gen], dim=1).cpu().numpy()
    third = n // 3
    toks[third : 2 * third, P + C // 2 :] = rng.integers(3, vocab, size=(third, C - C // 2))
    toks[2 * third :, P:] = rng.integers(3, vocab, size=(n - 2 * third, C))
    return toks


def run(
    device: str = "auto",
    n: int | None = None,
    batch: int | None = None,
    peak_tflops: float | None = None,
) -> dict[str, Any]:
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    cuda = device.startswith("cuda")
    shape = "pythia-410m" if cuda else "tiny"
    n = n or (4096 if cuda else 48)
    batch = batch or (512 if cuda else 16)
    t_start = time.perf_counter()
    res: dict[str, Any] = {
        "device": device_name(device), "shape": shape, **SHAPES[shape], "n_sequences": n,
        "batch_size": batch, "prompt_len": P, "cont_len": C,
        "load_average_1m": round(os.getloadavg()[0], 2), "dtypes": {},
    }  # fmt: skip
    for dname, dtype in DTYPES.items():
        res["dtypes"][dname] = _one_dtype(shape, dtype, device, n, batch, peak_tflops)
        if cuda:
            torch.cuda.empty_cache()
    res["n_params"] = res["dtypes"]["bf16"].pop("n_params")
    res["dtypes"]["fp16"].pop("n_params")
    res["peak_source"] = "--peak-tflops" if peak_tflops else "dense matmul measured here"
    res["total_seconds"] = round(time.perf_counter() - t_start, 1)
    return res


def _one_dtype(
    shape: str, dtype: torch.dtype, device: str, n: int, batch: int, peak_tflops: float | None
) -> dict[str, Any]:
    """The three methods in one dtype: speed, MFU, label agreement."""
    cuda = device.startswith("cuda")
    model = make_model(shape, dtype, device)
    toks = make_sequences(model, n, batch, device)
    truth = torch.as_tensor(toks[:, P : P + C], device=device)
    flops = method_flops(model.config, P, C)
    flops["pythia"] = flops.pop("baseline")
    flops["generate"] = flops.pop("generate_mode")
    peak = peak_tflops or matmul_peak_tflops(dtype, device, 4096 if cuda else 512)

    def fast() -> tuple[np.ndarray, np.ndarray]:
        out = [score_batch(model, toks[i : i + batch], P, C, suppress_ids=[0], device=device)
               for i in range(0, n, batch)]  # fmt: skip
        return (np.concatenate([o.prefix_match_len for o in out]),
                np.concatenate([o.label_certain for o in out]))  # fmt: skip

    def generate() -> tuple[np.ndarray, None]:
        out = [score_batch(model, toks[i : i + batch], P, C, mode="generate", suppress_ids=[0],
                           device=device) for i in range(0, n, batch)]  # fmt: skip
        return np.concatenate([o.prefix_match_len for o in out]), None

    @torch.inference_mode()
    def pythia() -> tuple[np.ndarray, None]:
        x = torch.as_tensor(toks[:, :P], device=device)
        outs = []
        for i in range(0, n, batch):
            o = model.generate(
                x[i : i + batch], attention_mask=torch.ones_like(x[i : i + batch]),
                max_length=P + C, min_length=P + C, do_sample=False, num_beams=1,
                use_cache=False, pad_token_id=1, eos_token_id=0,
            )  # fmt: skip
            outs.append(o[:, P:])
        return prefix_len(torch.cat(outs) == truth).cpu().numpy(), None

    methods = {"fast": fast, "generate": generate, "pythia": pythia}
    labels, certain, entry = {}, None, {"peak_tflops": round(peak, 3), "methods": {}}
    for name, fn in methods.items():
        score_batch(model, toks[:batch], P, C, suppress_ids=[0], device=device)  # warm-up
        _sync(device)
        t = time.perf_counter()
        labels[name], c = fn()
        _sync(device)
        secs = time.perf_counter() - t
        certain = c if c is not None else certain
        tf = flops[name] * n / secs / 1e12
        entry["methods"][name] = {
            "seconds": round(secs, 3), "seq_per_s": round(n / secs, 1),
            "tflops": round(tf, 4), "mfu": round(tf / peak, 4),
        }  # fmt: skip
    assert certain is not None
    for a, b in (("fast", "generate"), ("fast", "pythia"), ("generate", "pythia")):
        differ = labels[a] != labels[b]
        entry[f"labels_differ_{a}_vs_{b}"] = int(differ.sum())
        entry[f"all_differences_uncertain_{a}_vs_{b}"] = bool(not (differ & certain).any())
    entry["n_exact_fast"] = int((labels["fast"] == C).sum())
    entry["n_params"] = sum(p.numel() for p in model.parameters())
    entry["n_uncertain_fast"] = int((~certain).sum())
    return entry


def to_markdown(r: dict[str, Any]) -> str:
    lines = [
        f"# GPU readiness benchmark ({r['device']})",
        "",
        f"Random-init GPT-NeoX, {r['shape']} shape ({r['n_params'] / 1e6:.1f}M params), "
        f"{r['n_sequences']} sequences, batch {r['batch_size']}, prompt {r['prompt_len']} + "
        f"continuation {r['cont_len']}, EOS suppressed; MFU against the {r['peak_source']}; "
        f"whole run {r['total_seconds']} s; load average {r['load_average_1m']}.",
        "",
        "| dtype | method | seq/s | TFLOP/s | MFU | seconds |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for d, e in r["dtypes"].items():
        for name, m in e["methods"].items():
            lines.append(
                f"| {d} | {name} | {m['seq_per_s']} | {m['tflops']} | {m['mfu']:.1%} | {m['seconds']} |"
            )
    lines += ["", "| dtype | exact (fast) | uncertain (fast) | fast≠generate | fast≠pythia | "
              "generate≠pythia | every difference uncertain |", "|---|---:|---:|---:|---:|---:|---|"]  # fmt: skip
    for d, e in r["dtypes"].items():
        ok = all(v for k, v in e.items() if k.startswith("all_differences_uncertain"))
        lines.append(
            f"| {d} | {e['n_exact_fast']} | {e['n_uncertain_fast']} | "
            f"{e['labels_differ_fast_vs_generate']} | {e['labels_differ_fast_vs_pythia']} | "
            f"{e['labels_differ_generate_vs_pythia']} | {'yes' if ok else 'NO'} |"
        )
    return "\n".join(lines) + "\n"


def write(r: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu.json").write_text(json.dumps(r, indent=2) + "\n")
    (out / "gpu.md").write_text(to_markdown(r))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="auto")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--peak-tflops", type=float, default=None)
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args()
    r = run(a.device, a.n, a.batch_size, a.peak_tflops)
    write(r, a.out)
    print(to_markdown(r))


if __name__ == "__main__":
    main()
