"""Equivalence on trained demo-suite models (memwh's own GPT-NeoX suite, fp32): a small suite built
here with the real `demo_suite.build_suite`, and the full demo suite when `memwh-data/demo-suite` exists."""

from __future__ import annotations

from pathlib import Path

import helpers
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from memwh import inference_jobs
from memwh.core import contract

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from memwh import demo_suite

    return demo_suite.build_suite(
        tmp_path_factory.mktemp("demo") / "suite", progress=False, threads=1,
        vocab_size=256, sizes=((32, 1, 2, 1e-2), (64, 2, 4, 6e-3)), n_background=192,
        ladder=(1, 16, 48), canaries_per_rung=4,
        shared_prefix_lens=(8, 24), batch_size=16, n_checkpoints=2, n_held_out=16,
    )  # fmt: skip


def _suite_units(suite: Path) -> list[tuple[str, str]]:
    from memwh.inference_jobs.models import suite_checkpoints

    units = [(e["model"], e["revision"]) for e in suite_checkpoints(suite)]
    assert units, f"{suite}: no checkpoints in suite_manifest.json"
    return units


def _check_suite(
    suite: Path, out: Path, units: list[tuple[str, str]], seq_range: tuple[int, int] | None
) -> int:
    """Fast == generate on the corpus and on greedy-built rows; generate == plain loop. Returns corpus n_exact."""
    from transformers import AutoModelForCausalLM

    exact_total = 0
    corpus = suite / "corpus.parquet"
    for model, rev in units:
        kw = {
            "revision": rev,
            "device": "cpu",
            "dtype": "fp32",
            "progress": False,
            "suppress_eos": True,
            "seq_range": seq_range,
        }
        fast = inference_jobs.score(str(suite / model), str(corpus), out, mode="fast", **kw)
        gen = inference_jobs.score(
            str(suite / model),
            str(corpus),
            out,
            mode="generate",
            name=f"{model}-gen",
            save_generations=True,
            **kw,
        )
        ft, gt = pq.read_table(fast.parquet), pq.read_table(gen.parquet)
        assert ft.column("prefix_match_len").equals(gt.column("prefix_match_len")), (model, rev)
        assert ft.column("exact_match").equals(gt.column("exact_match")), (model, rev)
        m = contract.read_manifest(fast.manifest)
        assert (
            m["family"] == "demo"
            and m["step"] == contract.parse_step(rev)
            # the edited control's revision `main` has no step, so no tokens seen
            and (m.get("tokens_seen") is not None or contract.parse_step(rev) is None)
        )
        # generate mode == a plain step-by-step greedy loop, on a sample of rows
        net = AutoModelForCausalLM.from_pretrained(suite / model / rev, dtype=torch.float32).eval()
        rows = pq.read_table(corpus).sort_by("seq_idx")
        take = np.arange(0, gt.num_rows, max(1, gt.num_rows // 24))
        seq = np.array(gt.column("seq_idx").to_pylist())[take]
        pos = np.searchsorted(np.array(rows.column("seq_idx").to_pylist()), seq)
        toks = np.array([r[:64] for r in rows.column("tokens").take(pos).to_pylist()])
        ref = helpers.plain_greedy(net, torch.as_tensor(toks[:, :32]), 32, [0]).numpy()
        np.testing.assert_array_equal(
            np.array(gt.column("generated_tokens").to_pylist())[take], ref
        )
        # the corpus may hold few memorized rows for tiny models: add rows whose continuation is the
        # checkpoint's own greedy output (exact) or the corpus truth (mostly partial)
        mixed = toks.copy()
        mixed[: len(mixed) // 2, 32:64] = ref[: len(mixed) // 2]
        table = helpers.write_token_table(out / f"mixed-{model}-{rev}.parquet", mixed, meta=False)
        kw["seq_range"] = None
        f2 = inference_jobs.score(str(suite / model), str(table), out / "mixed", mode="fast", **kw)
        g2 = inference_jobs.score(
            str(suite / model),
            str(table),
            out / "mixed",
            mode="generate",
            name=f"{model}-gen",
            **kw,
        )
        assert (
            pq.read_table(f2.parquet)
            .column("prefix_match_len")
            .equals(pq.read_table(g2.parquet).column("prefix_match_len"))
        )
        assert f2.n_exact == g2.n_exact >= len(mixed) // 2
        exact_total += fast.n_exact
    return exact_total


def test_small_demo_suite_fast_equals_generate(small_suite, tmp_path):
    _check_suite(small_suite, tmp_path, _suite_units(small_suite), None)


@pytest.mark.slow
def test_real_demo_suite(demo_suite_dir, tmp_path):
    suite = demo_suite_dir
    units = _suite_units(suite)
    _check_suite(suite, tmp_path, [units[0], units[-1]], (0, 256))
