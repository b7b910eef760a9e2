"""Issue 14 acceptance: multi-prompt equivalence on the demo suite's trained models.

For every demo model's final checkpoint, the one-pass rows for k in {8, 16, 24, 32} (m = 32,
fp32, 100% of the demo's scored sequences) equal separate generate-mode runs per k. Reuses the
session's demo run (tests/conftest.py): the demo already scored each final checkpoint in
generate mode at k = 32 over every sequence, so only k = 8, 16, 24 are decoded here.
"""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from memwh.core import contract

pytestmark = pytest.mark.slow

KS = (8, 16, 24, 32)
M = 32


def _final_shards(scores_root) -> dict[str, tuple]:
    """model -> (revision, manifest, manifest path) of its generate-mode (final) shard."""
    out = {}
    for man_path in contract.iter_manifests(scores_root):
        m = contract.read_manifest(man_path)
        if m["mode"] == "generate":
            out[m["model"]] = (m["revision"], m, man_path)
    return out


def test_one_pass_equals_generate_per_prompt_length_on_demo_models(demo_run, all_cores):
    with all_cores():  # demo-sized models use every core
        _check_equivalence(demo_run)


def _check_equivalence(demo_run) -> None:
    from transformers import AutoModelForCausalLM

    from memwh.inference_jobs.data import open_source
    from memwh.inference_jobs.scoring import score_batch

    shards = _final_shards(demo_run.scores_root)
    assert len(shards) >= 4, sorted(shards)  # every size of the demo suite
    exact_by_k = {k: 0 for k in KS}
    for model, (revision, m, man_path) in sorted(shards.items()):
        stored = pq.read_table(man_path.with_name(m["parquet_file"])).sort_by("seq_idx")
        assert m["cont_len"] == M and m["prompt_len"] == 32 and m["suppress_eos"]
        src = open_source(m["data_source"])
        idx = stored.column("seq_idx").to_numpy()
        toks = src.read(idx, 32 + M)
        net = AutoModelForCausalLM.from_pretrained(
            demo_run.suite_dir / model / revision, dtype=torch.float32
        ).eval()
        fast = [score_batch(net, toks[i : i + 512], KS, M, suppress_ids=[0])
                for i in range(0, len(toks), 512)]  # fmt: skip
        pml = np.concatenate([f.prefix_match_len for f in fast]).reshape(-1, len(KS))
        # k = 32: the demo's own generate-mode rows (100% of its sequences)
        np.testing.assert_array_equal(pml[:, -1], stored.column("prefix_match_len").to_numpy())
        for j, k in enumerate(KS[:-1]):
            gen = np.concatenate([
                score_batch(net, toks[i : i + 512, : k + M], k, M, mode="generate",
                            suppress_ids=[0]).prefix_match_len
                for i in range(0, len(toks), 512)
            ])  # fmt: skip
            np.testing.assert_array_equal(pml[:, j], gen, err_msg=f"{model}@{revision} k={k}")
        for j, k in enumerate(KS):
            exact_by_k[k] += int((pml[:, j] == M).sum())
    assert all(v > 0 for v in exact_by_k.values()), exact_by_k  # labels really occur
