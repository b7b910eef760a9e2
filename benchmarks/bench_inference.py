"""Benchmark: one-pass fast mode vs greedy generation with KV cache vs the Pythia baseline.

    python -m benchmarks.bench_inference [--suite DIR] [--n 256] [--batch-size 256] [--repeats 2]

Model: the largest (latest) checkpoint of the demo suite (``data/demo-suite`` or ``--suite``);
without a suite, a randomly initialised GPT-NeoX of the same shape (hidden 256, 4 layers,
8 heads, vocab 2048: ~4.2M params) on sequences that include its own greedy continuations.
CPU, fp32, EOS suppressed in all methods (the baseline is Pythia's exact call:
``generate(max_length=P+C, min_length=P+C, use_cache=False)``, where min_length blocks EOS).

Methods, all on the same sequences and batch size:
* fast          `score_batch(mode="fast")`: one teacher-forced pass + all metrics (our path);
* kv_generate   greedy decoding with KV cache (`greedy_generate`) + label computation;
* generate_mode `score_batch(mode="generate")`: kv_generate + the teacher-forced pass for
                loss/min-k (what `--mode generate` runs);
* baseline      HF `model.generate(..., use_cache=False, min_length=...)` (Pythia's eval).
Each method is timed `repeats` times, interleaved (the box may be shared), best time kept.
Achieved GFLOP/s = analytic forward FLOPs actually executed (linear layers, attention, head;
recomputation included for the baseline) / time, against a fp32 matmul peak measured here.
Writes benchmarks/results/inference.json and inference.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from memwh.core.config import data_dir
from memwh.inference_jobs.scoring import greedy_generate, prefix_len, score_batch

RESULTS = Path(__file__).resolve().parent / "results"


def write_results(name: str, result: dict[str, Any], md: str, out: Path = RESULTS) -> None:
    """`out/<name>.json` (the numbers) and `out/<name>.md` (the table docs link), then the
    markdown printed: what every model-side benchmark ends with."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / f"{name}.md").write_text(md)
    print(md)


def matmul_peak_gflops(n: int = 1024, reps: int = 20) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def forward_flops(cfg: Any, new_tokens: int, ctx_before: int, n_logits: int) -> float:
    """FLOPs of one forward over `new_tokens` tokens after `ctx_before` cached ones (per sequence)."""
    d, layers, ff, vocab = (
        cfg.hidden_size,
        cfg.num_hidden_layers,
        cfg.intermediate_size,
        cfg.vocab_size,
    )
    linear = 2 * (4 * d * d + 2 * d * ff) * new_tokens * layers
    keys = sum(ctx_before + i + 1 for i in range(new_tokens))  # causal attention, keys per query
    attn = 2 * 2 * d * keys * layers
    return float(linear + attn + 2 * d * vocab * n_logits)


def method_flops(cfg: Any, p: int, c: int) -> dict[str, float]:
    fast = forward_flops(cfg, p + c - 1, 0, c)
    kv = forward_flops(cfg, p, 0, 1) + sum(forward_flops(cfg, 1, p + j - 1, 1) for j in range(1, c))
    base = sum(forward_flops(cfg, p + j, 0, 1) for j in range(c))
    return {"fast": fast, "kv_generate": kv, "generate_mode": fast + kv, "baseline": base}


def load_subject(
    suite: Path | None, n: int, p: int, c: int
) -> tuple[Any, np.ndarray, dict[str, Any]]:
    from transformers import AutoModelForCausalLM, GPTNeoXConfig, GPTNeoXForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    suite = suite or data_dir() / "demo-suite"
    man = suite / "suite_manifest.json"
    if man.is_file():
        from memwh.inference_jobs.models import suite_checkpoints

        entries = suite_checkpoints(suite)
        top = max(entries, key=lambda e: (e["n_params"], e.get("step", 0)))
        path = suite / top["path"] if not Path(top["path"]).is_absolute() else Path(top["path"])
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        from memwh.inference_jobs.data import open_source

        src = open_source(str(suite / "corpus.parquet"))
        lo, hi = src.index_range()
        idx = src.indices_in(lo, hi)
        meta = src.sequence_meta()
        if meta is not None:  # half canaries (duplicated, often memorized), half background
            canary = np.asarray(
                meta.column("is_canary").fill_null(False).to_numpy(zero_copy_only=False), bool
            )
            seq = meta.column("seq_idx").to_numpy()
            pick = np.concatenate([seq[canary][: n // 2], seq[~canary]])[:n]
            idx = np.sort(pick)
        idx = idx[:n]
        toks = src.read(idx, p + c)
        info = {
            "source": "demo-suite",
            "model": top["model"],
            "revision": top["revision"],
            "path": str(path),
        }
        return model, toks, info
    cfg = GPTNeoXConfig(
        vocab_size=2048, hidden_size=256, num_hidden_layers=4, num_attention_heads=8,
        intermediate_size=1024, max_position_embeddings=2048, rotary_pct=0.25,
        tie_word_embeddings=False, bos_token_id=0, eos_token_id=0, pad_token_id=1,
    )  # fmt: skip
    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(cfg).eval()
    rng = np.random.default_rng(0)
    prompts = torch.as_tensor(rng.integers(3, 2048, size=(n, p)))
    with torch.inference_mode():
        gen = torch.cat(
            [greedy_generate(model, prompts[i : i + 256], c, [0])[0] for i in range(0, n, 256)]
        ).numpy()
    toks = np.concatenate([prompts.numpy(), gen], axis=1)
    toks[n // 3 :, p + 4 :] = rng.integers(3, 2048, size=(n - n // 3, c - 4))  # 1/3 exact matches
    info = {
        "source": "random-init GPT-NeoX of the demo-4.2m shape (no demo suite found)",
        "model": "random-4.2m",
    }
    return model, toks, info


def run(
    suite: Path | None, n: int, batch: int, repeats: int, p: int = 32, c: int = 32
) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    model, toks, info = load_subject(suite, n, p, c)
    n = len(toks)
    n_params = sum(x.numel() for x in model.parameters())
    eos = [0]
    truth = torch.as_tensor(toks[:, p : p + c])
    pad = model.config.pad_token_id if model.config.pad_token_id is not None else 0

    def fast() -> dict[str, np.ndarray]:
        out = [
            score_batch(model, toks[i : i + batch], p, c, mode="fast", suppress_ids=eos)
            for i in range(0, n, batch)
        ]
        return {"prefix_match_len": np.concatenate([o.prefix_match_len for o in out])}

    def generate_mode() -> dict[str, np.ndarray]:
        out = [
            score_batch(model, toks[i : i + batch], p, c, mode="generate", suppress_ids=eos)
            for i in range(0, n, batch)
        ]
        return {
            "prefix_match_len": np.concatenate([o.prefix_match_len for o in out]),
            "memorization_score": np.concatenate([o.memorization_score for o in out]),
        }

    @torch.inference_mode()
    def kv_generate() -> dict[str, np.ndarray]:
        x = torch.as_tensor(toks)
        gen = torch.cat(
            [greedy_generate(model, x[i : i + batch, :p], c, eos)[0] for i in range(0, n, batch)]
        )
        m = gen == truth
        return {
            "prefix_match_len": prefix_len(m).numpy(),
            "memorization_score": m.float().mean(1).numpy(),
        }

    @torch.inference_mode()
    def baseline() -> dict[str, np.ndarray]:
        x = torch.as_tensor(toks)
        outs = []
        for i in range(0, n, batch):
            o = model.generate(
                x[i : i + batch, :p], attention_mask=torch.ones_like(x[i : i + batch, :p]),
                max_length=p + c, min_length=p + c, do_sample=False, num_beams=1,
                use_cache=False, pad_token_id=pad, eos_token_id=eos[0],
            )  # fmt: skip
            outs.append(o[:, p:])
        m = torch.cat(outs) == truth
        return {
            "prefix_match_len": prefix_len(m).numpy(),
            "memorization_score": m.float().mean(1).numpy(),
        }

    methods = {
        "fast": fast,
        "kv_generate": kv_generate,
        "generate_mode": generate_mode,
        "baseline": baseline,
    }
    fast_warm = toks[: min(8, n)]
    score_batch(model, fast_warm, p, c, mode="generate", suppress_ids=eos)  # warm-up
    peak = matmul_peak_gflops()
    times: dict[str, list[float]] = {k: [] for k in methods}
    labels: dict[str, dict[str, np.ndarray]] = {}
    for _ in range(repeats):
        for name, fn in methods.items():
            t = time.perf_counter()
            labels[name] = fn()
            times[name].append(time.perf_counter() - t)
    peak = max(peak, matmul_peak_gflops())
    flops = method_flops(model.config, p, c)
    ref = labels["baseline"]
    agree = {
        name: bool(np.array_equal(lab["prefix_match_len"], ref["prefix_match_len"]))
        and bool(np.array_equal(lab["prefix_match_len"] == c, ref["prefix_match_len"] == c))
        and (
            "memorization_score" not in lab
            or bool(np.allclose(lab["memorization_score"], ref["memorization_score"]))
        )
        for name, lab in labels.items()
    }
    res: dict[str, Any] = {
        "subject": info,
        "n_params": n_params,
        "n_sequences": n,
        "batch_size": batch,
        "prompt_len": p,
        "cont_len": c,
        "dtype": "float32",
        "device": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "repeats": repeats,
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "n_exact": int((ref["prefix_match_len"] == c).sum()),
        "matmul_peak_gflops": round(peak, 2),
        "methods": {},
        "labels_identical_to_baseline": agree,
    }
    for name in methods:
        best = min(times[name])
        gf = flops[name] * n / best / 1e9
        res["methods"][name] = {
            "seconds": round(best, 3),
            "all_seconds": [round(t, 3) for t in times[name]],
            "seq_per_s": round(n / best, 1),
            "gflop_per_seq": round(flops[name] / 1e9, 5),
            "achieved_gflops": round(gf, 2),
            "fraction_of_peak": round(gf / peak, 3),
        }
    s = {k: min(v) for k, v in times.items()}
    res["speedup_fast_vs_kv_generate"] = round(s["kv_generate"] / s["fast"], 2)
    res["speedup_fast_vs_generate_mode"] = round(s["generate_mode"] / s["fast"], 2)
    res["speedup_fast_vs_baseline"] = round(s["baseline"] / s["fast"], 2)
    res["targets_met"] = {
        # The target is against generate mode (`--mode generate`: KV-cache decoding +
        # the same per-token metrics). The bare decoding loop is reported as a stricter check.
        "fast >= 1.5x generate mode": res["speedup_fast_vs_generate_mode"] >= 1.5,
        "fast >= 1.5x bare KV-cache decoding (labels only)": res["speedup_fast_vs_kv_generate"]
        >= 1.5,
        "fast >= 8x baseline": res["speedup_fast_vs_baseline"] >= 8,
        "identical labels": all(agree.values()),
    }
    return res


def to_markdown(r: dict[str, Any]) -> str:
    lines = [
        "# Inference benchmark (CPU)",
        "",
        f"Model: {r['subject']['model']} ({r['n_params'] / 1e6:.2f}M params; {r['subject']['source']}), "
        f"{r['n_sequences']} sequences, batch {r['batch_size']}, prompt {r['prompt_len']} + continuation "
        f"{r['cont_len']}, fp32, EOS suppressed, {r['torch_threads']} torch threads, best of {r['repeats']}.",
        f"fp32 matmul peak measured in the same run: {r['matmul_peak_gflops']} GFLOP/s. "
        f"Exact matches in the sample: {r['n_exact']}. 1-minute load average before/after: "
        f"{r['load_average_1m'][0]}/{r['load_average_1m'][1]} on {os.cpu_count()} cores (other jobs shift "
        "absolute numbers; the ratios are the measurement).",
        "",
        "| method | seconds | seq/s | GFLOP/seq | achieved GFLOP/s | % of peak | labels = baseline |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name, m in r["methods"].items():
        lines.append(
            f"| {name} | {m['seconds']} | {m['seq_per_s']} | {m['gflop_per_seq']} | {m['achieved_gflops']} | "
            f"{100 * m['fraction_of_peak']:.1f}% | {'yes' if r['labels_identical_to_baseline'][name] else 'NO'} |"
        )
    lines += [
        "",
        f"Speed-up of fast mode: {r['speedup_fast_vs_kv_generate']}x vs greedy generation with KV cache, "
        f"{r['speedup_fast_vs_generate_mode']}x vs the full `--mode generate`, "
        f"{r['speedup_fast_vs_baseline']}x vs Pythia's `generate(use_cache=False)`.",
        "Targets: "
        + ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in r["targets_met"].items())
        + ".",
        "",
        "fast = one teacher-forced pass (logits only for the continuation) + loss/min-k/accuracy; "
        "kv_generate = greedy decoding with KV cache; generate_mode = kv_generate + the teacher-forced "
        "pass for the per-token metrics; baseline = HF generate without cache, min_length blocks EOS. "
        "GFLOP/s counts the forward FLOPs each method actually executes (the baseline recomputes the prefix).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", type=Path, default=None)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args()
    r = run(a.suite, a.n, a.batch_size, a.repeats)
    write_results("inference", r, to_markdown(r), a.out)


if __name__ == "__main__":
    main()
