"""benchmarks/bench_gpu.py runs end to end on CPU (tiny shape), so it is ready for a CUDA box."""

from __future__ import annotations

import json

from benchmarks import bench_gpu


def test_gpu_benchmark_runs_on_cpu_and_writes_its_results(tmp_path):
    r = bench_gpu.run("cpu", n=6, batch=3)
    bench_gpu.write(r, tmp_path)
    got = json.loads((tmp_path / "gpu.json").read_text())
    assert got["shape"] == "tiny" and set(got["dtypes"]) == {"bf16", "fp16"}
    for e in got["dtypes"].values():
        assert set(e["methods"]) == {"fast", "generate", "pythia"}
        assert all(m["seq_per_s"] > 0 and m["mfu"] > 0 for m in e["methods"].values())
        # exact matches exist (the model's own continuations) and every label that differs
        # between methods is one the certificate calls uncertain
        assert e["n_exact_fast"] >= 1
        assert all(v for k, v in e.items() if k.startswith("all_differences_uncertain"))
    assert "| bf16 | fast |" in (tmp_path / "gpu.md").read_text()
