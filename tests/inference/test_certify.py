"""Certified labels (issue 14, Build 4): on a bf16 run of a tiny model trained on random rows,
every label that differs from fp32's is among the uncertain ones, and --verify makes the
labels equal fp32's. Real training, real runs through `score()`, CPU."""

from __future__ import annotations

import json
from pathlib import Path

import helpers
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from memwh.core import contract
from memwh.inference_jobs import certify, score
from memwh.inference_jobs.scoring import score_batch

KS = "8,16,24,32"


@pytest.fixture(scope="module")
def memorizer(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, np.ndarray]:
    """(model folder, token table, rows): 192 random rows, half-learned (near ties abound)."""
    root = tmp_path_factory.mktemp("memorizer")
    model, rows = helpers.train_memorizer(root / "mem-tiny")
    data = helpers.write_token_table(root / "rows.parquet", rows, meta=False)
    return model, data, rows


def _run(model: Path, data: Path, out: Path, dtype: str, **kw) -> pa.Table:
    res = score(str(model), str(data), out, prompt_len=KS, dtype=dtype, device="cpu",
                batch_size=64, progress=False, save_windows=False, **kw)  # fmt: skip
    return pq.read_table(res.parquet)


def test_bf16_labels_that_differ_from_fp32_are_uncertain_and_verify_fixes_them(memorizer, tmp_path):
    model, data, _ = memorizer
    ref = _run(model, data, tmp_path / "fp32", "fp32")
    low = _run(model, data, tmp_path / "bf16", "bf16")
    assert ref.schema.remove_metadata().equals(contract.SCORE_SCHEMA)
    pml32 = ref.column("prefix_match_len").to_numpy()
    pml16 = low.column("prefix_match_len").to_numpy()
    certain = low.column("label_certain").to_numpy(zero_copy_only=False)
    differ = pml32 != pml16
    # the fixture is informative: bf16 really changes labels, some rows are memorized
    assert differ.sum() >= 3, differ.sum()
    assert (pml32 == 32).any()
    # acceptance: every differing label is an uncertain one
    assert not (differ & certain).any()
    # ... and the certificate is not vacuous. This half-learned model is the hard case (near
    # ties everywhere, ~5% of bf16 labels wrong, most rows uncertain): benchmarks/bench_certify.py
    # measures the uncertain share and --verify's cost on models further along.
    assert certain.any()
    # fp32 rows are certain against fp32's own (tiny) tolerance
    assert ref.column("label_certain").to_numpy(zero_copy_only=False).all()
    assert not ref.column("label_verified").to_numpy(zero_copy_only=False).any()
    margin = low.column("label_margin").to_numpy()
    assert (margin >= 0).all() and np.isfinite(margin[~certain]).all()

    out = tmp_path / "bf16-verified"
    ver = _run(model, data, out, "bf16", verify=True)
    np.testing.assert_array_equal(ver.column("prefix_match_len").to_numpy(), pml32)
    np.testing.assert_array_equal(ver.column("exact_match"), ref.column("exact_match"))
    verified = ver.column("label_verified").to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(verified, ~certain)  # exactly the uncertain rows re-scored
    # rows whose label changed were re-scored: fp32's values (the same computation as the fp32
    # run); rows whose label held keep the bf16 run's metrics and take fp32's certificate
    np.testing.assert_allclose(
        ver.column("loss").to_numpy()[differ], ref.column("loss").to_numpy()[differ], rtol=1e-5
    )
    held = verified & ~differ
    assert held.any()
    np.testing.assert_array_equal(
        ver.column("loss").to_numpy()[held], low.column("loss").to_numpy()[held]
    )
    assert ver.column("label_certain").to_numpy(zero_copy_only=False)[verified].all()
    man = json.loads(next(out.rglob("*.manifest.json")).read_text())
    lv = man["label_verification"]
    assert lv["n_uncertain"] == lv["n_checked"] == int((~certain).sum())
    assert lv["n_flipped"] == lv["n_rescored"] == int(differ.sum())
    assert lv["kappa"] == certify.KAPPA and lv["unit_roundoff"] == 2.0**-8
    assert man["settings"]["verify"] is True
    # the unverified bf16 run is another setting: not reused for a --verify request
    assert (
        man["run_id"]
        != json.loads(next((tmp_path / "bf16").rglob("*.manifest.json")).read_text())["run_id"]
    )


def test_generate_mode_certificate_covers_its_flips(memorizer):
    """Generate mode certifies its own decode: bf16 labels that differ from fp32 decoding are
    uncertain ones."""
    model_dir, _, rows = memorizer
    from transformers import AutoModelForCausalLM

    m32 = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    m16 = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).eval()
    ks = (8, 16, 24, 32)
    a = score_batch(m32, rows, ks, 32, mode="generate", suppress_ids=[0])
    b = score_batch(m16, rows, ks, 32, mode="generate", suppress_ids=[0])
    differ = a.prefix_match_len != b.prefix_match_len
    assert differ.any()
    assert not (differ & b.label_certain).any()
    # fast and generate agree on which positions decide the label in fp32 (same label, and a
    # certain fast label is a certain generate label up to the decode's own float order)
    f = score_batch(m32, rows, ks, 32, mode="fast", suppress_ids=[0])
    np.testing.assert_array_equal(f.prefix_match_len, a.prefix_match_len)


def test_label_certainty_reads_only_the_deciding_positions():
    """Smallest gap over positions 0..first mismatch; later positions never count."""
    gaps = torch.tensor([[5.0, 0.1, 3.0], [5.0, 4.0, 0.2], [0.3, 9.0, 9.0]])
    tols = torch.full_like(gaps, 1.0)
    prefix = torch.tensor([3, 1, 0])  # exact match; mismatch at 1; mismatch at 0
    margin, certain = certify.label_certainty(gaps, tols, prefix)
    np.testing.assert_allclose(margin.numpy(), [0.1, 4.0, 0.3])
    assert certain.tolist() == [False, True, False]


def test_truth_gap_is_the_rival_that_could_change_the_label():
    z = torch.tensor([[3.0, 2.5, 1.0, 0.0]])
    # truth is the argmax: top-1 minus top-2
    assert certify.truth_gap(z, torch.tensor([0])).item() == pytest.approx(0.5)
    # truth is not the argmax: top-1 minus the truth (a tie of two wrong tokens is harmless)
    assert certify.truth_gap(z, torch.tensor([2])).item() == pytest.approx(2.0)
    assert certify.unit_roundoff(torch.bfloat16) == 2.0**-8
    assert certify.unit_roundoff(torch.float16) == 2.0**-11


def test_certainty_reaches_the_warehouse_and_show(memorizer, tmp_path):
    """A real bf16 run (and a bf16 --verify run) ingested and built: memorization_rates counts
    the uncertain and verified labels as the manifests' label_verification does, and `memwh
    show` marks the uncertain ones."""
    from memwh.ingest import ingest_root
    from memwh.query import sql
    from memwh.texts import UNCERTAIN_MARK, render, scored_texts
    from memwh.warehouse.build import build

    model, data, rows = memorizer
    out, db = tmp_path / "runs", tmp_path / "wh.duckdb"
    runs = {}
    for name, verify in (("mem-bf16", False), ("mem-verified", True)):
        res = score(str(model), str(data), out, name=name, prompt_len=32, dtype="bf16",
                    device="cpu", batch_size=64, progress=False, verify=verify)  # fmt: skip
        runs[name] = (pq.read_table(res.parquet), json.loads(res.manifest.read_text()))
    assert ingest_root(out, db, progress=False).ok
    build(db, quiet=True, target_path=tmp_path / "target", unit_tests=False)
    rates = {
        r["model"]: r
        for r in sql(
            "select model, n_scored, n_memorized, n_label_uncertain, n_memorized_uncertain, "
            "n_label_verified from memorization_rates",
            db,
        ).iter_rows(named=True)
    }
    for name, (table, man) in runs.items():
        lv = man["label_verification"]
        certain = table.column("label_certain").to_numpy(zero_copy_only=False)
        exact = table.column("exact_match").to_numpy(zero_copy_only=False)
        r = rates[name]
        assert r["n_scored"] == len(rows)
        assert r["n_label_verified"] == lv["n_checked"]
        if name == "mem-bf16":
            assert lv["n_uncertain"] > 0 and lv["n_checked"] == 0
            assert r["n_label_uncertain"] == lv["n_uncertain"] == int((~certain).sum())
        else:  # re-scored rows carry fp32's certainty (fp32's tolerance: certain)
            assert lv["n_checked"] == lv["n_uncertain"] > 0
            assert r["n_label_uncertain"] == int((~certain).sum()) == 0
        assert r["n_memorized_uncertain"] == int((exact & ~certain).sum())

    shown = scored_texts("mem-bf16", limit=None, db=db, tokenizer=None)
    table = runs["mem-bf16"][0]
    by_seq = dict(
        zip(
            table.column("seq_idx").to_pylist(),
            table.column("label_certain").to_pylist(),
            strict=True,
        )
    )
    assert len(shown) == len(rows)
    assert all(t.label_certain == by_seq[t.seq_idx] for t in shown)
    text = render([t for t in shown if t.label_certain is False][:2])
    assert text.count(UNCERTAIN_MARK) == 3  # two labels + the legend
    assert UNCERTAIN_MARK not in render([t for t in shown if t.label_certain][:2])
    verified = scored_texts("mem-verified", limit=None, db=db, tokenizer=None)
    assert (
        sum(bool(t.label_verified) for t in verified)
        == runs["mem-verified"][1]["label_verification"]["n_checked"]
    )


def test_generate_mode_verify_gives_fp32_generate_labels(memorizer, tmp_path):
    """--verify checks generate-mode labels with an fp32 teacher-forced pass over the deciding
    positions (greedy decoding equals the teacher-forced argmax up to the first mismatch) and
    re-decodes in fp32 only the rows whose label changed."""
    model, data, _ = memorizer
    ref = _run(model, data, tmp_path / "fp32", "fp32", mode="generate")
    ver = _run(model, data, tmp_path / "bf16v", "bf16", mode="generate", verify=True)
    low = _run(model, data, tmp_path / "bf16", "bf16", mode="generate")
    pml32 = ref.column("prefix_match_len").to_numpy()
    differ = pml32 != low.column("prefix_match_len").to_numpy()
    assert differ.any()
    np.testing.assert_array_equal(ver.column("prefix_match_len").to_numpy(), pml32)
    score = ver.column("memorization_score").to_numpy()
    np.testing.assert_array_equal(
        score[differ], ref.column("memorization_score").to_numpy()[differ]
    )
