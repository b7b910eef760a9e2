from __future__ import annotations

import json
import os
import time

import polars as pl
import pytest

from memwh.core.errors import MemwhError
from memwh.demo_suite import build_suite, read_manifest
from memwh.demo_suite.corpus import read_tokens


def test_layout_and_manifest(tiny_suite, tiny_overrides):
    m = read_manifest(tiny_suite)
    assert m["family"] == "demo" and len(m["models"]) == len(tiny_overrides["sizes"])
    rows = m["checkpoints"]
    steps = sorted({r["step"] for r in rows})
    # the initial weights as step0, then n_checkpoints evenly spaced ending at the last step
    assert steps[0] == 0 and len(steps) == tiny_overrides["n_checkpoints"] + 1
    n_trained = m["corpus"]["n_sequences"] - m["corpus"]["n_held_out"]
    n_steps = n_trained // tiny_overrides["batch_size"]
    assert steps[-1] == n_steps
    assert m["corpus"]["n_held_out"] == tiny_overrides["n_held_out"]
    assert m["exposure"]["path"] == "exposure.parquet"
    for r in rows:
        assert r["revision"] == f"step{r['step']}" and r["family"] == "demo"
        assert r["path"] == f"{r['model']}/step{r['step']}"
        assert (tiny_suite / r["path"] / "model.safetensors").is_file()
        assert r["sequences_per_step"] == tiny_overrides["batch_size"]
        assert r["tokens_per_step"] == 64 * r["sequences_per_step"]
        assert r["tokens_seen"] == r["step"] * r["tokens_per_step"]
        assert r["train_flops"] == 6 * r["n_params"] * r["tokens_seen"]
    csv = pl.read_csv(tiny_suite / "suite_manifest.csv")
    assert csv.to_dicts() == [{k: r[k] for k in csv.columns} for r in rows]
    # models listed smallest first
    sizes = [next(r["n_params"] for r in rows if r["model"] == name) for name in m["models"]]
    assert sizes == sorted(sizes)


def test_checkpoints_reload_and_counts_match(tiny_suite):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for r in read_manifest(tiny_suite)["checkpoints"]:
        path = tiny_suite / r["path"]
        model = AutoModelForCausalLM.from_pretrained(path)
        assert type(model).__name__ == "GPTNeoXForCausalLM"
        total = sum(p.numel() for p in model.parameters())
        emb = (
            model.get_input_embeddings().weight.numel()
            + model.get_output_embeddings().weight.numel()
        )
        assert r["n_params"] == total
        assert r["non_embedding_params"] == total - emb
    tok = AutoTokenizer.from_pretrained(path)
    assert tok.eos_token_id == 0 and tok("t3 t4").input_ids == [3, 4]


def test_final_checkpoint_learned_the_language(tiny_suite):
    """Training loss falls: the last checkpoint's loss is below the first's (real training)."""
    rows = read_manifest(tiny_suite)["checkpoints"]
    for name in {r["model"] for r in rows}:
        assert [r["train_loss"] for r in rows if r["model"] == name and r["step"] == 0] == [None]
        losses = [r["train_loss"] for r in rows if r["model"] == name and r["step"] > 0]
        assert losses[-1] < losses[0] < 7.7  # ln(2048) = 7.62 is a uniform guess


def test_generation_with_cache_matches_teacher_forcing(tiny_suite):
    import torch
    from transformers import AutoModelForCausalLM

    rows = read_manifest(tiny_suite)["checkpoints"]
    model = AutoModelForCausalLM.from_pretrained(tiny_suite / rows[-1]["path"]).eval()
    tokens, _, _ = read_tokens(tiny_suite / "corpus.parquet")
    x = torch.from_numpy(tokens[:4, :32])
    gen = model.generate(x, max_new_tokens=8, do_sample=False, use_cache=True, min_new_tokens=8)
    assert gen.shape == (4, 40)
    assert torch.equal(gen[:, :32], x)


def test_second_call_is_cached(tiny_suite, tiny_overrides):
    before = (tiny_suite / "suite_manifest.json").stat().st_mtime_ns
    t0 = time.perf_counter()
    assert build_suite(tiny_suite, seed=3, progress=False, **tiny_overrides) == tiny_suite
    assert time.perf_counter() - t0 < 2.0
    assert (tiny_suite / "suite_manifest.json").stat().st_mtime_ns == before


def test_rebuild_when_a_checkpoint_is_missing(tmp_path, tiny_overrides):
    small = {**tiny_overrides, "sizes": [(16, 1, 2, 1e-2)], "n_checkpoints": 2}
    out = build_suite(tmp_path / "s", progress=False, **small)
    first = json.loads((out / "suite_manifest.json").read_text())["checkpoints"][0]["path"]
    import shutil

    shutil.rmtree(out / first)
    build_suite(out, progress=False, **small)
    assert (out / first / "model.safetensors").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # temp folders cleaned


def test_refuses_to_replace_a_foreign_folder(tmp_path, tiny_overrides):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(MemwhError, match="not empty"):
        build_suite(tmp_path, progress=False, **tiny_overrides)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_unknown_override_is_a_user_error(tmp_path):
    with pytest.raises(MemwhError, match="unknown setting"):
        build_suite(tmp_path / "s", progress=False, hidden=12)


def test_cli_show_prints_manifest(tiny_suite, tiny_overrides, monkeypatch):
    from typer.testing import CliRunner

    from memwh.cli import app

    monkeypatch.setenv("COLUMNS", "120")
    res = CliRunner().invoke(app, ["suite", "show", "--out", str(tiny_suite)])
    assert res.exit_code == 0, res.output
    name = read_manifest(tiny_suite)["models"][0]
    assert name in res.output and "step" in res.output


def test_default_out_uses_memwh_home(tmp_path, monkeypatch):
    from memwh.demo_suite import default_suite_dir

    monkeypatch.setenv("MEMWH_HOME", str(tmp_path))
    assert default_suite_dir() == tmp_path / "demo-suite"
    assert os.fspath(default_suite_dir()).startswith(os.fspath(tmp_path))
