"""Benchmark: every prompt length from one teacher-forced pass vs one run per prompt length.

    python -m benchmarks.bench_multi_prompt [--suite DIR] [--n 256] [--batch-size 64] [--repeats 2] [--threads 1]

Prompt lengths k = 32, 64, 128, 256, continuation m = 32 (the issue's acceptance setting). Model
and data as in bench_inference (largest demo-suite checkpoint, else a random-init GPT-NeoX of the
demo shape on sequences holding its own greedy continuations), CPU, fp32, EOS suppressed.

Methods, all over the same sequences and batch size, timed `repeats` times interleaved (the
machine is shared), best time kept:
* multi_fast      `score_batch(ks, mode="fast")`: ONE pass over max(k) + m - 1 tokens, rows for
                  all four k (what `--prompt-len 32,64,128,256` runs);
* separate_fast   four `score_batch(k, mode="fast")` runs (four `--prompt-len k` jobs);
* separate_generate four `score_batch(k, mode="generate")` runs (four `--mode generate` jobs);
* multi_generate  `score_batch(ks, mode="generate")`: the shared pass + one decode per k.
Labels (prefix_match_len, exact_match) of every method are compared per k with separate_generate.
Writes benchmarks/results/multi_prompt.{json,md}.
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

from benchmarks.bench_inference import RESULTS, load_subject
from memwh.inference_jobs.scoring import score_batch

KS = (32, 64, 128, 256)
M = 32


def _batches(fn: Any, toks: np.ndarray, batch: int) -> list[Any]:
    return [fn(toks[i : i + batch]) for i in range(0, len(toks), batch)]


def _labels_by_k(outs: list[Any], ks: tuple[int, ...]) -> dict[int, np.ndarray]:
    pml = np.concatenate([o.prefix_match_len for o in outs])
    return {k: pml[j :: len(ks)] for j, k in enumerate(ks)}


def run(suite: Path | None, n: int, batch: int, repeats: int) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    model, toks, info = load_subject(suite, n, KS[-1], M)
    n = len(toks)
    eos = [0]

    def multi(mode: str) -> dict[int, np.ndarray]:
        outs = _batches(
            lambda t: score_batch(model, t, KS, M, mode=mode, suppress_ids=eos), toks, batch
        )
        return _labels_by_k(outs, KS)

    def separate(mode: str) -> dict[int, np.ndarray]:
        res = {}
        for k in KS:
            outs = _batches(
                lambda t, k=k: score_batch(model, t[:, : k + M], k, M, mode=mode, suppress_ids=eos),
                toks,
                batch,
            )
            res[k] = _labels_by_k(outs, (k,))[k]
        return res

    methods = {
        "multi_fast": lambda: multi("fast"),
        "separate_fast": lambda: separate("fast"),
        "separate_generate": lambda: separate("generate"),
        "multi_generate": lambda: multi("generate"),
    }
    score_batch(model, toks[:4], KS, M, mode="generate", suppress_ids=eos)  # warm-up
    times: dict[str, list[float]] = {k: [] for k in methods}
    labels: dict[str, dict[int, np.ndarray]] = {}
    for _ in range(repeats):
        for name, fn in methods.items():
            t = time.perf_counter()
            labels[name] = fn()
            times[name].append(time.perf_counter() - t)
    ref = labels["separate_generate"]
    agree = {name: all(np.array_equal(lab[k], ref[k]) for k in KS) for name, lab in labels.items()}
    best = {k: min(v) for k, v in times.items()}
    res: dict[str, Any] = {
        "subject": info,
        "n_params": sum(x.numel() for x in model.parameters()),
        "n_sequences": n,
        "batch_size": batch,
        "prompt_lens": list(KS),
        "cont_len": M,
        "dtype": "float32",
        "torch_threads": torch.get_num_threads(),
        "repeats": repeats,
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "exact_by_prompt_len": {str(k): int((ref[k] == M).sum()) for k in KS},
        "methods": {
            name: {
                "seconds": round(best[name], 3),
                "all_seconds": [round(t, 3) for t in times[name]],
                "rows_per_s": round(n * len(KS) / best[name], 1),
            }
            for name in methods
        },
        "labels_identical_to_separate_generate": agree,
    }
    res["speedup_multi_fast_vs_separate_fast"] = round(
        best["separate_fast"] / best["multi_fast"], 2
    )
    res["speedup_multi_fast_vs_separate_generate"] = round(
        best["separate_generate"] / best["multi_fast"], 2
    )
    res["speedup_multi_generate_vs_separate_generate"] = round(
        best["separate_generate"] / best["multi_generate"], 2
    )
    res["targets_met"] = {
        "multi fast >= 1.8x four separate fast runs": res["speedup_multi_fast_vs_separate_fast"]
        >= 1.8,
        "multi fast >= 8x four separate generate runs": res[
            "speedup_multi_fast_vs_separate_generate"
        ]
        >= 8,
        "identical labels": all(agree.values()),
    }
    return res


def to_markdown(r: dict[str, Any]) -> str:
    lines = [
        "# Multi-prompt benchmark (CPU)",
        "",
        f"Model: {r['subject']['model']} ({r['n_params'] / 1e6:.2f}M params; {r['subject']['source']}), "
        f"{r['n_sequences']} sequences, batch {r['batch_size']}, prompt lengths {r['prompt_lens']}, "
        f"continuation {r['cont_len']}, fp32, EOS suppressed, {r['torch_threads']} torch threads, "
        f"best of {r['repeats']} interleaved repeats. 1-minute load average before/after: "
        f"{r['load_average_1m'][0]}/{r['load_average_1m'][1]} on {os.cpu_count()} cores.",
        f"Exact matches by prompt length: {r['exact_by_prompt_len']}.",
        "",
        "| method | seconds | rows/s | labels = separate generate |",
        "|---|---:|---:|---|",
    ]
    for name, m in r["methods"].items():
        ok = "yes" if r["labels_identical_to_separate_generate"][name] else "NO"
        lines.append(f"| {name} | {m['seconds']} | {m['rows_per_s']} | {ok} |")
    lines += [
        "",
        f"One pass for all four prompt lengths: {r['speedup_multi_fast_vs_separate_fast']}x four "
        f"separate fast runs, {r['speedup_multi_fast_vs_separate_generate']}x four separate "
        f"generate runs; multi-prompt generate mode (shared teacher-forced pass, one decode per k): "
        f"{r['speedup_multi_generate_vs_separate_generate']}x four separate generate runs.",
        "Targets: "
        + ", ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in r["targets_met"].items())
        + ".",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", type=Path, default=None)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: a shared box)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    r = run(a.suite, a.n, a.batch_size, a.repeats)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "multi_prompt.json").write_text(json.dumps(r, indent=2) + "\n")
    md = to_markdown(r)
    (a.out / "multi_prompt.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
