"""Benchmark: certified labels under bf16 (issue 14, Build 4; STUDIES.md section 9).

    python -m benchmarks.bench_certify [--rows 256] [--fresh 256] [--epochs 30,80] [--threads 1]

Tiny GPT-NeoX models (tests/inference/helpers.train_memorizer: hidden 64, 2 layers, vocab 256)
trained on `rows` random 64-token rows for each number of `epochs` (a half-learned and a
well-learned model). Scored: the trained rows plus `fresh` random rows never trained on,
prompt 32, continuation 32, EOS suppressed, CPU, through `memwh.inference_jobs.score` in
fast and generate mode:

* fp32: the reference labels;
* bf16: labels, how many differ from fp32 (flips), how many are uncertain (label_certain false),
  and whether every flip is uncertain (the certificate's promise);
* bf16 --verify: labels after checking the uncertain rows in fp32 (must equal fp32's), rows
  re-scored (those whose label changed), the verify step's seconds (manifest
  label_verification.seconds) as a share of the bf16 run's seconds (target <= 10%), and the
  process CPU seconds of the run with and without --verify (the machine is shared: CPU time is
  what load does not inflate; the 1-minute load average is recorded);
* steady state: the same costs with the models in memory (no loads, no file I/O), i.e. what
  the overhead tends to on runs long enough to amortise the fp32 load.

Also reported per model: ``error_ratio``, the largest |gap(bf16) - gap(fp32)| / (u * max|logit|)
over every deciding position (certify.py derives KAPPA = 32 from it), and the uncertain share at
KAPPA 8 and 16 (how much a tighter tolerance would save, and what it would risk).
Writes benchmarks/results/certify.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch

from benchmarks.bench_inference import write_results
from memwh.inference_jobs import certify, score
from memwh.inference_jobs.scoring import check_labels, score_batch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "inference"))
import helpers

K, M = 32, 32


def _run(model: Path, data: Path, out: Path, dtype: str, mode: str, verify: bool) -> dict:
    cpu0 = time.process_time()
    res = score(str(model), str(data), out, prompt_len=K, cont_len=M, mode=mode, dtype=dtype,
                device="cpu", batch_size=128, suppress_eos=True, progress=False,
                save_windows=False, verify=verify)  # fmt: skip
    cpu = time.process_time() - cpu0
    t = pq.read_table(res.parquet)
    man = json.loads(res.manifest.read_text())
    return {
        "pml": t.column("prefix_match_len").to_numpy(),
        "certain": t.column("label_certain").to_numpy(zero_copy_only=False),
        "seconds": man["wall_seconds"],
        "cpu_seconds": cpu,
        "verification": man["label_verification"],
    }


def _cpu(fn: Any, repeat: int = 3) -> float:
    """Best-of-`repeat` process CPU seconds of fn() (CPU time: what a shared machine's load
    does not inflate)."""
    best = float("inf")
    for _ in range(repeat):
        t = time.process_time()
        fn()
        best = min(best, time.process_time() - t)
    return best


def _steady(m16: Any, m32: Any, toks: np.ndarray, mode: str) -> dict[str, float]:
    """The verify step's cost without the per-run fixed costs (model loads, file I/O), models
    in memory: bf16 scoring of every row (batches of 128, as the runs) against the fp32 check
    of the uncertain rows (batches of 64 sorted by matched prefix, as runner.verify_rows) and
    against the previous method, a full fp32 re-score of those rows."""
    low = score_batch(m16, toks, K, M, mode=mode, suppress_ids=[0])
    unc = np.flatnonzero(~low.label_certain)
    unc = unc[np.argsort(low.prefix_match_len[unc], kind="stable")]

    def score16() -> None:
        for i in range(0, len(toks), 128):
            score_batch(m16, toks[i : i + 128], K, M, mode=mode, suppress_ids=[0])

    def check32() -> None:
        for i in range(0, len(unc), 64):
            part = unc[i : i + 64]
            check_labels(m32, toks[part], K, M, low.prefix_match_len[part], suppress_ids=[0])

    def rescore32() -> None:
        for i in range(0, len(unc), 64):
            score_batch(m32, toks[unc[i : i + 64]], K, M, mode=mode, suppress_ids=[0])

    t16 = _cpu(score16)
    return {
        "steady_bf16_cpu_seconds": round(t16, 4),
        "steady_check_cpu_seconds": round(_cpu(check32), 4) if len(unc) else 0.0,
        "steady_rescore_cpu_seconds": round(_cpu(rescore32), 4) if len(unc) else 0.0,
    }


def _error_ratio(model: Path, toks: np.ndarray) -> dict[str, float]:
    """max |gap_bf16 - gap_fp32| / (u * scale) over all continuation positions, and the
    uncertain share of labels at other KAPPAs."""
    from transformers import AutoModelForCausalLM

    m32 = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32).eval()
    m16 = AutoModelForCausalLM.from_pretrained(model, dtype=torch.bfloat16).eval()
    x = torch.as_tensor(toks[:, : K + M - 1])
    truth = torch.as_tensor(toks[:, K : K + M])
    with torch.inference_mode():
        z32 = m32(input_ids=x, logits_to_keep=M).logits
        z16 = m16(input_ids=x, logits_to_keep=M).logits
        scale = certify.scale_of(z16)  # of the raw logits, as scoring computes it
        for z in (z32, z16):
            z[..., 0] = float("-inf")  # EOS suppressed, as in the runs
        g32, g16 = certify.truth_gap(z32, truth), certify.truth_gap(z16, truth)
    ok = torch.isfinite(g32) & torch.isfinite(g16)
    ratio = ((g32 - g16).abs() / (certify.unit_roundoff(torch.bfloat16) * scale))[ok]
    out = {
        "error_ratio_max": round(float(ratio.max()), 2),
        "error_ratio_p99": round(float(ratio.quantile(0.99)), 2),
    }
    kappa = certify.KAPPA
    try:
        for k in (8.0, 16.0):
            certify.KAPPA = k
            s = score_batch(m16, toks, K, M, suppress_ids=[0])
            r = score_batch(m32, toks, K, M, suppress_ids=[0])
            differ = s.prefix_match_len != r.prefix_match_len
            out[f"uncertain_share_kappa_{int(k)}"] = round(float((~s.label_certain).mean()), 4)
            out[f"flips_missed_kappa_{int(k)}"] = int((differ & s.label_certain).sum())
    finally:
        certify.KAPPA = kappa
    out["steady"] = {mode: _steady(m16, m32, toks, mode) for mode in ("fast", "generate")}
    return out


def run(rows: int, fresh: int, epochs: list[int]) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    res: dict[str, Any] = {"models": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for ep in epochs:
            t0 = time.perf_counter()
            model, trained = helpers.train_memorizer(root / f"mem-{ep}", n_rows=rows, epochs=ep)
            train_s = time.perf_counter() - t0
            rng = np.random.default_rng(1)
            toks = np.concatenate([trained, rng.integers(3, helpers.VOCAB, size=(fresh, 64))])
            data = helpers.write_token_table(root / f"data-{ep}.parquet", toks, meta=False)
            entry: dict[str, Any] = {
                "epochs": ep, "train_seconds": round(train_s, 1), "modes": {},
                **_error_ratio(model, toks),
            }  # fmt: skip
            for mode in ("fast", "generate"):
                ref = _run(model, data, root / f"o-{ep}-{mode}-32", "fp32", mode, False)
                low = _run(model, data, root / f"o-{ep}-{mode}-16", "bf16", mode, False)
                ver = _run(model, data, root / f"o-{ep}-{mode}-16v", "bf16", mode, True)
                differ = ref["pml"] != low["pml"]
                v = ver["verification"]
                entry["modes"][mode] = {
                    "labels": len(ref["pml"]),
                    "memorized_fp32": int((ref["pml"] == M).sum()),
                    "flips_bf16_vs_fp32": int(differ.sum()),
                    "exact_flips_bf16_vs_fp32": int(((ref["pml"] == M) != (low["pml"] == M)).sum()),
                    "uncertain": int((~low["certain"]).sum()),
                    "every_flip_uncertain": bool(not (differ & low["certain"]).any()),
                    "verified_equals_fp32": bool(np.array_equal(ver["pml"], ref["pml"])),
                    "checked": v["n_checked"],
                    "flipped_by_verify": v["n_flipped"],
                    "rescored_by_verify": v.get("n_rescored", v["n_checked"]),
                    "bf16_seconds": low["seconds"],
                    "verify_seconds": v["seconds"],
                    "verify_overhead": round(v["seconds"] / max(low["seconds"], 1e-9), 3),
                    **entry["steady"][mode],
                    # the same run with --verify against without, in process CPU seconds (the
                    # machine is shared: CPU time is what load does not inflate)
                    "bf16_cpu_seconds": round(low["cpu_seconds"], 3),
                    "bf16_verify_cpu_seconds": round(ver["cpu_seconds"], 3),
                    "verify_overhead_cpu": round(
                        ver["cpu_seconds"] / max(low["cpu_seconds"], 1e-9) - 1, 3
                    ),
                }
            res["models"].append(entry)
    res.update(
        rows_trained=rows, rows_fresh=fresh, prompt_len=K, cont_len=M, kappa=certify.KAPPA,
        torch_threads=torch.get_num_threads(),
        load_average_1m=[round(load_before, 2), round(os.getloadavg()[0], 2)],
    )  # fmt: skip
    return res


def to_markdown(r: dict[str, Any]) -> str:
    lines = [
        "# Certified labels benchmark (CPU, bf16 vs fp32)",
        "",
        f"Tiny GPT-NeoX (hidden 64, 2 layers, vocab 256) trained on {r['rows_trained']} random "
        f"64-token rows; scored: those rows + {r['rows_fresh']} fresh random rows, prompt "
        f"{r['prompt_len']}, continuation {r['cont_len']}, EOS suppressed, KAPPA = {r['kappa']}, "
        f"{r['torch_threads']} torch thread(s); 1-minute load average before/after "
        f"{r['load_average_1m'][0]}/{r['load_average_1m'][1]} on {os.cpu_count()} cores.",
        "",
        "| epochs | mode | labels | memorized (fp32) | flips bf16 vs fp32 | uncertain | every flip uncertain | "
        "after --verify = fp32 | re-scored | verify s | bf16 run s | overhead | bf16 CPU s | "
        "--verify CPU s | overhead (CPU) |",
        "|---:|---|---:|---:|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in r["models"]:
        for mode, x in e["modes"].items():
            lines.append(
                f"| {e['epochs']} | {mode} | {x['labels']} | {x['memorized_fp32']} | "
                f"{x['flips_bf16_vs_fp32']} ({x['exact_flips_bf16_vs_fp32']} exact) | "
                f"{x['uncertain']} | {'yes' if x['every_flip_uncertain'] else 'NO'} | "
                f"{'yes' if x['verified_equals_fp32'] else 'NO'} | {x['rescored_by_verify']} | "
                f"{x['verify_seconds']} | {x['bf16_seconds']} | {x['verify_overhead']:.1%} | "
                f"{x['bf16_cpu_seconds']} | {x['bf16_verify_cpu_seconds']} | "
                f"{x['verify_overhead_cpu']:.1%} |"
            )
    lines += [
        "",
        "Tolerance check (fast-mode positions, bf16): largest |gap(bf16) - gap(fp32)| in units "
        "of u * max|logit| (KAPPA must exceed it), and what a smaller KAPPA would give:",
        "",
        "| epochs | error ratio max | p99 | uncertain share KAPPA 8 | flips missed | KAPPA 16 | flips missed |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in r["models"]:
        lines.append(
            f"| {e['epochs']} | {e['error_ratio_max']} | {e['error_ratio_p99']} | "
            f"{e['uncertain_share_kappa_8']:.1%} | {e['flips_missed_kappa_8']} | "
            f"{e['uncertain_share_kappa_16']:.1%} | {e['flips_missed_kappa_16']} |"
        )
    lines += [
        "",
        "Steady state (models in memory, no loads or file I/O; best of 3, process CPU seconds): "
        "bf16 scoring of every row against the fp32 check of the uncertain rows (prompt + "
        "deciding positions, what `--verify` runs) and against a full fp32 re-score of them "
        "(the method before it):",
        "",
        "| epochs | mode | bf16 scoring CPU s | fp32 check CPU s | overhead | full fp32 re-score CPU s | overhead |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for e in r["models"]:
        for mode, x in e["steady"].items():
            t16 = max(x["steady_bf16_cpu_seconds"], 1e-9)
            lines.append(
                f"| {e['epochs']} | {mode} | {x['steady_bf16_cpu_seconds']} | "
                f"{x['steady_check_cpu_seconds']} | {x['steady_check_cpu_seconds'] / t16:.1%} | "
                f"{x['steady_rescore_cpu_seconds']} | {x['steady_rescore_cpu_seconds'] / t16:.1%} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--fresh", type=int, default=256)
    ap.add_argument("--epochs", default="30,80")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    r = run(a.rows, a.fresh, [int(x) for x in a.epochs.split(",")])
    write_results("certify", r, to_markdown(r))


if __name__ == "__main__":
    main()
