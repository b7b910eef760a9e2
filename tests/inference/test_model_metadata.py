"""Model facts stated at scoring time reach the warehouse: two models labelled `gpt2` and
`gpt2-large` form one family with `--family gpt2` (the label regex would make two), and get
precision/recall rows. Real scoring of tiny models, real ingest, real `dbt build`."""

from __future__ import annotations

import sys

import helpers
import numpy as np
import pyarrow.parquet as pq
import pytest

from memwh import inference_jobs
from memwh.cli import main
from memwh.core import contract
from memwh.core.errors import MemwhError


def _infer(monkeypatch, *args: str) -> int:
    monkeypatch.setattr(sys, "argv", ["memwh", "infer", *args])
    try:
        main()
    except SystemExit as e:
        return int(e.code or 0)
    return 0


@pytest.mark.slow
def test_family_option_makes_one_family_with_precision_recall(tmp_path, monkeypatch):
    from memwh.ingest import ingest_root
    from memwh.query import sql
    from memwh.warehouse.build import build

    tok = helpers.make_tokenizer()
    nets = {}
    for label, hidden, seed in (("gpt2", 32, 1), ("gpt2-large", 64, 2), ("other", 32, 3)):
        nets[label] = helpers.make_model(seed, hidden=hidden)
        nets[label].save_pretrained(tmp_path / "models" / label)
        tok.save_pretrained(tmp_path / "models" / label)
    # Each model's own greedy continuations: both memorize something, of different sets.
    seqs = np.concatenate(
        [helpers.build_sequences(nets["gpt2-large"], 30, seed=7), helpers.build_sequences(nets["gpt2"], 30, seed=8)]
    )  # fmt: skip
    data = helpers.write_token_table(tmp_path / "tokens.parquet", seqs, meta=False)
    out = tmp_path / "out"
    common = ["--data", str(data), "--out", str(out), "--device", "cpu", "--suppress-eos", "-q"]
    for label in ("gpt2", "gpt2-large"):
        code = _infer(
            monkeypatch, "--model", str(tmp_path / "models" / label), *common,
            "--family", "gpt2", "--step", "1000", "--tokens-per-step", "4096",
            "--sequences-per-step", "2",
        )  # fmt: skip
        assert code == 0
    inference_jobs.score(
        str(tmp_path / "models" / "other"), str(data), out, device="cpu", progress=False
    )
    m = contract.read_manifest(contract.shard_paths(out, "gpt2-large", "main", 0, 1)[1])
    n_large = sum(p.numel() for p in nets["gpt2-large"].parameters())
    assert (m["family"], m["step"], m["n_params"]) == ("gpt2", 1000, n_large)
    assert (m["tokens_seen"], m["train_flops"]) == (1000 * 4096, 6.0 * n_large * 1000 * 4096)
    assert (
        m["metadata_source"]["family"] == "stated"
        and m["metadata_source"]["n_params"] == "measured"
    )
    assert (
        contract.read_manifest(contract.shard_paths(out, "other", "main", 0, 1)[1])["family"]
        is None
    )

    db = tmp_path / "wh.duckdb"
    report = ingest_root(out, db, progress=False)
    assert not report.problems
    result = build(db, quiet=True, target_path=tmp_path / "target", unit_tests=False)
    assert result.guessed == {"other": ("family",)}
    assert "guessed from the label for 1 model(s): other (family)" in result.summary()

    units = sql(
        "select model, family, family_is_guessed, step, n_params from units order by model", db
    )
    assert units.rows() == [
        ("gpt2", "gpt2", False, 1000, sum(p.numel() for p in nets["gpt2"].parameters())),
        ("gpt2-large", "gpt2", False, 1000, n_large),
        ("other", "other", True, None, sum(p.numel() for p in nets["other"].parameters())),
    ]
    pr = sql(
        "select predictor_model, target_model, family, tp, fp, fn, tn, precision, recall "
        "from prediction_precision_recall",
        db,
    )
    assert pr.height == 1
    row = pr.row(0, named=True)
    assert (row["predictor_model"], row["target_model"], row["family"]) == (
        "gpt2",
        "gpt2-large",
        "gpt2",
    )

    # Independent: the memorized sets straight from the Parquet files (prefix match >= 32 of 32).
    def memorized(label: str) -> set[int]:
        t = pq.read_table(contract.shard_paths(out, label, "main", 0, 1)[0]).to_pydict()
        return {i for i, p in zip(t["seq_idx"], t["prefix_match_len"], strict=True) if p >= 32}

    p, t = memorized("gpt2"), memorized("gpt2-large")
    assert p and t
    tp = len(p & t)
    assert (row["tp"], row["fp"], row["fn"], row["tn"]) == (
        tp,
        len(p - t),
        len(t - p),
        60 - len(p | t),
    )
    assert row["precision"] == pytest.approx(tp / len(p))
    assert row["recall"] == pytest.approx(tp / len(t))


def test_stated_facts_are_checked(tiny_suite, token_table, tmp_path):
    with pytest.raises(MemwhError, match="--step 5 contradicts --revision step2"):
        inference_jobs.score(
            str(tiny_suite), str(token_table), tmp_path, revision="step2", device="cpu",
            progress=False, meta=inference_jobs.ModelMeta(step=5),
        )  # fmt: skip
    with pytest.raises(MemwhError, match="--n-params 0: must be >= 1"):
        inference_jobs.ModelMeta(n_params=0).check("main")
    # the suite's facts are kept unless stated; stated ones win and recompute compute
    r = inference_jobs.score(
        str(tiny_suite), str(token_table), tmp_path, revision="step2", device="cpu",
        progress=False, seq_range=(100, 110), meta=inference_jobs.ModelMeta(family="tiny-x"),
    )  # fmt: skip
    m = contract.read_manifest(r.manifest)
    assert (m["family"], m["step"], m["sequences_per_step"], m["tokens_seen"]) == (
        "tiny-x",
        2,
        8,
        1024,
    )
    assert m["metadata_source"]["family"] == "stated" and m["metadata_source"]["step"] == "suite"
