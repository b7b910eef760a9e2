"""score(): contract layout, manifest provenance, sharding, skip/force, preemption + resume."""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pyarrow.parquet as pq
import pytest

from memwh import inference_jobs
from memwh.core import contract
from memwh.core.errors import MemwhError
from memwh.inference_jobs import runner, scoring


def _run(tiny_suite, data, out, **kw):
    kw.setdefault("revision", "step2")
    kw.setdefault("progress", False)
    kw.setdefault("device", "cpu")
    return inference_jobs.score(str(tiny_suite), str(data), out, **kw)


def test_fast_and_generate_shards_follow_the_contract(tiny_suite, token_table, tmp_path):
    fast = _run(tiny_suite, token_table, tmp_path, mode="fast", suppress_eos=True)
    gen = _run(
        tiny_suite,
        token_table,
        tmp_path,
        mode="generate",
        suppress_eos=True,
        name="tiny-gen",
        save_generations=True,
    )
    assert fast.status == gen.status == "done"
    assert fast.parquet == contract.shard_paths(tmp_path, "tiny-50k", "step2", 0, 1)[0]
    ft, gt = pq.read_table(fast.parquet), pq.read_table(gen.parquet)
    assert ft.schema.remove_metadata().equals(contract.SCORE_SCHEMA)
    assert gt.column_names == [*contract.REQUIRED_COLUMNS, "generated_tokens"]
    assert ft.column("seq_idx").to_pylist() == list(range(100, 160))
    assert ft.column("memorization_score").null_count == 60
    assert gt.column("memorization_score").null_count == 0
    assert ft.column("prefix_match_len").equals(gt.column("prefix_match_len"))
    assert fast.n_exact == gen.n_exact >= 20
    m = contract.read_manifest(fast.manifest)
    assert set(contract.MANIFEST_REQUIRED) <= set(m)
    assert m["parquet_sha256"] == contract.sha256_file(fast.parquet)
    assert m["n_rows"] == 60 and m["n_exact"] == fast.n_exact
    assert (m["seq_start"], m["seq_end"]) == (100, 160)
    assert m["mode"] == "fast" and m["suppress_eos"] is True and m["eos_token_id"] == 0
    assert m["dtype"] == "float32" and m["device"].startswith("cpu")
    # demo-suite metadata copied from suite_manifest.json
    assert m["family"] == "tiny" and m["step"] == 2 and m["sequences_per_step"] == 8
    assert m["tokens_seen"] == 1024
    for k in (
        "versions",
        "git_sha",
        "host",
        "data_fingerprint",
        "slurm_job_id",
        "started_at",
        "finished_at",
    ):
        assert k in m
    kv = json.loads(pq.ParquetFile(fast.parquet).schema_arrow.metadata[b"memwh"])
    assert kv["run_id"] == m["run_id"] and kv["data_fingerprint"] == m["data_fingerprint"]
    # sequence metadata (duplicates / is_canary) once per data fingerprint
    meta = pq.read_table(contract.sequences_meta_path(tmp_path, m["data_fingerprint"]))
    assert meta.schema.equals(contract.SEQUENCE_META_SCHEMA) and meta.num_rows == 60
    # generated tokens match the truth exactly where exact_match
    g = np.array(gt.column("generated_tokens").to_pylist())
    assert g.shape == (60, 32)


def test_shards_partition_the_range_and_skip_or_force(tiny_suite, token_table, tmp_path, capsys):
    rows = []
    for i in range(3):
        r = _run(
            tiny_suite,
            token_table,
            tmp_path,
            seq_range=(105, 150),
            shard=i,
            num_shards=3,
            batch_size=4,
        )
        m = contract.read_manifest(r.manifest)
        assert (m["seq_start"], m["seq_end"]) == contract.shard_bounds(105, 150, i, 3)
        rows += pq.read_table(r.parquet).column("seq_idx").to_pylist()
    assert rows == list(range(105, 150))
    again = _run(
        tiny_suite,
        token_table,
        tmp_path,
        seq_range=(105, 150),
        shard=1,
        num_shards=3,
        progress=True,
    )
    assert again.status == "skipped" and again.n_rows == 15
    assert "skipped" in capsys.readouterr().err
    with pytest.raises(MemwhError, match=r"other settings \(mode fast -> generate\);.*--force"):
        _run(
            tiny_suite, token_table, tmp_path, seq_range=(105, 150), shard=1, num_shards=3,
            mode="generate",
        )  # fmt: skip
    old = contract.read_manifest(again.manifest)["run_id"]
    forced = _run(
        tiny_suite, token_table, tmp_path, seq_range=(105, 150), shard=1, num_shards=3, force=True
    )
    assert forced.status == "done" and contract.read_manifest(forced.manifest)["run_id"] != old


def test_preempt_then_resume_gives_the_uninterrupted_file(
    tiny_suite, token_table, tmp_path, monkeypatch
):
    ref = _run(tiny_suite, token_table, tmp_path / "ref", mode="generate", batch_size=7)
    monkeypatch.setattr(runner, "FLUSH_SECONDS", 0.0)
    calls = {"n": 0}
    real = scoring.score_batch

    def preempt_on_third(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            os.kill(os.getpid(), signal.SIGUSR1)
        return real(*a, **k)

    monkeypatch.setattr(runner, "score_batch", preempt_on_third)
    out = tmp_path / "run"
    r1 = _run(tiny_suite, token_table, out, mode="generate", batch_size=7)
    assert r1.status == "preempted" and r1.n_rows == 21
    assert not r1.parquet.exists() and not r1.manifest.exists()
    partial = r1.parquet.parent / ".part-00000-of-00001.partial"
    assert len(list(partial.glob("batches-*.parquet"))) == 3
    assert signal.getsignal(signal.SIGUSR1) is signal.SIG_DFL  # handlers restored
    monkeypatch.setattr(runner, "score_batch", real)
    r2 = _run(tiny_suite, token_table, out, mode="generate", batch_size=7)
    assert r2.status == "done" and r2.n_rows == 60
    resumed = pq.read_table(r2.parquet).replace_schema_metadata(None)
    assert resumed.equals(pq.read_table(ref.parquet).replace_schema_metadata(None))
    m = contract.read_manifest(r2.manifest)
    assert m["attempts"] == 2 and m["n_resumed_rows"] == 21
    assert not partial.exists()


def test_changed_settings_discard_partial_results(tiny_suite, token_table, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "FLUSH_SECONDS", 0.0)
    real = scoring.score_batch
    monkeypatch.setattr(
        runner,
        "score_batch",
        lambda *a, **k: (os.kill(os.getpid(), signal.SIGTERM), real(*a, **k))[1],
    )
    r1 = _run(tiny_suite, token_table, tmp_path, batch_size=8)
    assert r1.status == "preempted"
    monkeypatch.setattr(runner, "score_batch", real)
    r2 = _run(tiny_suite, token_table, tmp_path, batch_size=16)  # different batches: start over
    m = contract.read_manifest(r2.manifest)
    assert m["attempts"] == 1 and m["n_resumed_rows"] == 0 and m["n_rows"] == 60


def test_parquet_without_manifest_is_not_complete(tiny_suite, token_table, tmp_path):
    r = _run(tiny_suite, token_table, tmp_path)
    r.manifest.unlink()
    assert not contract.is_complete(tmp_path, "tiny-50k", "step2", 0, 1)
    again = _run(tiny_suite, token_table, tmp_path)
    assert again.status == "done"


@pytest.mark.parametrize("kind", ["megatron", "text"])
def test_other_sources_end_to_end(tiny_suite, token_table, tmp_path, kind):
    import helpers

    seqs = np.array(pq.read_table(token_table).column("tokens").to_pylist())[:12, :64]
    if kind == "megatron":
        helpers.write_mmididx(tmp_path / "d_text_document", list(seqs), dtype=np.uint16)
        data = tmp_path / "d_text_document"
    else:
        tok = helpers.make_tokenizer()
        data = tmp_path / "d.jsonl"
        data.write_text(
            "".join(
                json.dumps({"text": " ".join(tok.convert_ids_to_tokens(row.tolist()))}) + "\n"
                for row in seqs
            )
        )
    r = _run(tiny_suite, data, tmp_path, name=f"t-{kind}")
    ref = _run(tiny_suite, token_table, tmp_path / "ref", seq_range=(100, 112))
    got, want = pq.read_table(r.parquet), pq.read_table(ref.parquet)
    assert got.column("seq_idx").to_pylist() == list(range(12))
    for col in ("prefix_match_len", "loss", "min_k_logprob"):
        assert got.column(col).equals(want.column(col))


def test_score_leaves_autograd_as_it_found_it(tiny_suite, token_table, tmp_path):
    """score() is a library call: training code running after it (e.g. the demo suite) needs grads."""
    import torch

    assert torch.is_grad_enabled()
    _run(tiny_suite, token_table, tmp_path, seq_range=(100, 108))
    assert torch.is_grad_enabled()


def test_token_windows_are_written_once_per_dataset_range(tiny_suite, token_table, tmp_path):
    """The scored windows (prompt + continuation) land in ROOT/sequences/<fp>/ once: a second
    unit over the same range leaves the file alone; --no-save-windows writes none."""
    a = _run(tiny_suite, token_table, tmp_path / "r", mode="fast", num_shards=2, shard=1)
    fp = contract.read_manifest(a.manifest)["data_fingerprint"]
    m = contract.read_manifest(a.manifest)
    need = m["prompt_len"] + m["cont_len"]
    path = contract.windows_path(tmp_path / "r", fp, need, m["seq_start"], m["seq_end"])
    assert path.is_file()
    w = pq.read_table(path)
    assert w.schema.equals(contract.WINDOW_SCHEMA)
    truth = pq.read_table(token_table).to_pydict()
    by_idx = dict(zip(truth["seq_idx"], truth["tokens"], strict=True))
    assert w.column("seq_idx").to_pylist() == list(range(m["seq_start"], m["seq_end"]))
    for i, toks in zip(
        w.column("seq_idx").to_pylist(), w.column("tokens").to_pylist(), strict=True
    ):
        assert toks == by_idx[i][:need]
    before = path.stat().st_mtime_ns
    _run(tiny_suite, token_table, tmp_path / "r", mode="fast", num_shards=2, shard=1, name="other")
    assert path.stat().st_mtime_ns == before
    # a shard scored before windows existed: rerunning the same command (skipped) writes them
    path.unlink()
    again = _run(tiny_suite, token_table, tmp_path / "r", mode="fast", num_shards=2, shard=1)
    assert again.status == "skipped" and pq.read_table(path).equals(w)
    _run(tiny_suite, token_table, tmp_path / "none", mode="fast", save_windows=False)
    assert not (tmp_path / "none" / "sequences").exists() or not list(
        (tmp_path / "none" / "sequences").rglob("windows-*.parquet")
    )


def _oom_above(monkeypatch, limit: int, seen: dict) -> None:
    """Loaded models raise a real torch.OutOfMemoryError from forward() for batches > limit."""
    import torch

    from memwh.inference_jobs import models

    real_load = models.load_model

    def load(ref, dtype, device):
        net = real_load(ref, dtype, device)
        forward = net.forward

        def guarded(*a, input_ids=None, **kw):
            if input_ids is not None and input_ids.shape[0] > limit:
                seen["oom"] += 1
                raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate (injected)")
            return forward(*a, input_ids=input_ids, **kw)

        net.forward = guarded
        return net

    monkeypatch.setattr(models, "load_model", load)


def test_out_of_memory_halves_the_batch_and_a_resume_computes_alike(
    tiny_suite, token_table, tmp_path, monkeypatch
):
    ref = _run(tiny_suite, token_table, tmp_path / "ref", mode="generate", batch_size=8)
    seen = {"oom": 0}
    _oom_above(monkeypatch, 8, seen)
    monkeypatch.setattr(runner, "FLUSH_SECONDS", 0.0)
    calls = {"n": 0}
    real = scoring.score_batch

    def preempt_on_fourth(*a, **k):
        calls["n"] += 1
        if calls["n"] == 4:
            os.kill(os.getpid(), signal.SIGUSR1)
        return real(*a, **k)

    monkeypatch.setattr(runner, "score_batch", preempt_on_fourth)
    out = tmp_path / "run"
    r1 = _run(tiny_suite, token_table, out, mode="generate", batch_size=32)
    assert r1.status == "preempted"
    assert seen["oom"] == 2  # 32 -> 16 -> 8
    partial = r1.parquet.parent / ".part-00000-of-00001.partial"
    assert json.loads((partial / "settings.json").read_text())["compute_batch_size"] == 8
    monkeypatch.setattr(runner, "score_batch", real)
    r2 = _run(tiny_suite, token_table, out, mode="generate", batch_size=32)
    assert r2.status == "done" and seen["oom"] == 2  # the resume starts at the size that fits
    m = contract.read_manifest(r2.manifest)
    assert m["batch_size"] == 32 and m["compute_batch_size"] == 8 and m["attempts"] == 2
    got = pq.read_table(r2.parquet).replace_schema_metadata(None)
    assert got.equals(pq.read_table(ref.parquet).replace_schema_metadata(None))


def test_out_of_memory_at_one_sequence_is_a_one_line_error(
    tiny_suite, token_table, tmp_path, monkeypatch
):
    _oom_above(monkeypatch, 0, {"oom": 0})
    with pytest.raises(MemwhError, match="out of memory scoring a single sequence on cpu"):
        _run(tiny_suite, token_table, tmp_path / "o", batch_size=4)


def test_offset_window_and_short_rows_skipped_and_counted(
    tiny_suite, token_table, tmp_path, monkeypatch
):
    """--offset scores tokens [offset, offset + prompt + cont) of each row; rows too short for
    it are skipped and counted (not a crash), also across a preemption and resume."""
    import pyarrow as pa

    full = pq.read_table(token_table)  # 60 rows of 72 tokens, seq_idx 100..159
    toks = full.column("tokens").to_pylist()
    short = {103, 117, 140}
    rows = [t[:30] if 100 + i in short else t for i, t in enumerate(toks)]
    data = tmp_path / "ragged.parquet"
    pq.write_table(full.set_column(1, "tokens", pa.array(rows, pa.list_(pa.int32()))), data)
    sliced = tmp_path / "sliced.parquet"  # what --offset 8 should score, as a plain table
    keep = [i for i in range(60) if 100 + i not in short]
    pq.write_table(
        pa.table({"seq_idx": pa.array([100 + i for i in keep], pa.int64()),
                  "tokens": pa.array([toks[i][8:] for i in keep], pa.list_(pa.int32()))}),
        sliced,
    )  # fmt: skip
    ref = pq.read_table(_run(tiny_suite, sliced, tmp_path / "ref", prompt_len=32).parquet)
    monkeypatch.setattr(runner, "FLUSH_SECONDS", 0.0)
    real, calls = scoring.score_batch, {"n": 0}

    def preempt_on_second(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            os.kill(os.getpid(), signal.SIGUSR1)
        return real(*a, **k)

    monkeypatch.setattr(runner, "score_batch", preempt_on_second)
    out = tmp_path / "run"
    kw = {"prompt_len": 32, "offset": 8, "batch_size": 16}
    assert _run(tiny_suite, data, out, **kw).status == "preempted"
    monkeypatch.setattr(runner, "score_batch", real)
    res = _run(tiny_suite, data, out, **kw)
    got = pq.read_table(res.parquet)
    assert got.num_rows == 57 and not set(got.column("seq_idx").to_pylist()) & short
    for col in ("seq_idx", "prefix_match_len", "exact_match"):
        assert got.column(col).equals(ref.column(col))
    np.testing.assert_allclose(
        got.column("loss").to_numpy(), ref.column("loss").to_numpy(), rtol=1e-5
    )
    m = contract.read_manifest(res.manifest)
    assert m["n_skipped_short"] == 3 and m["offset"] == 8
    assert m["data_fingerprint"].endswith("-o8")  # another window = another scored dataset
    windows = list((out / "sequences" / m["data_fingerprint"]).glob("windows-*.parquet"))
    w = pq.read_table(windows[0]).sort_by("seq_idx")
    assert w.num_rows == 57 and w.column("tokens")[0].as_py() == toks[0][8:72]
    with pytest.raises(MemwhError, match="--offset -1"):
        _run(tiny_suite, data, tmp_path / "neg", offset=-1)


def test_several_windows_per_row(tiny_suite, token_table, tmp_path):
    """--windows-per-row 2 with prompt 16 + cont 16: window w of row r is sequence r*2+w,
    tokens [offset + 32w, offset + 32(w+1)); a row too short for window 1 skips only that one;
    row metadata applies to both windows."""
    import pyarrow as pa

    full = pq.read_table(token_table)  # 60 rows of 72 tokens, seq_idx 100..159
    toks = full.column("tokens").to_pylist()
    rows = [t[:50] if i == 5 else t for i, t in enumerate(toks)]  # row 105: only window 0
    data = tmp_path / "rows.parquet"
    pq.write_table(full.set_column(1, "tokens", pa.array(rows, pa.list_(pa.int32()))), data)
    flat = tmp_path / "flat.parquet"  # the same windows as rows of their own
    ids, wins = [], []
    for i, t in enumerate(rows):
        for w in range(2):
            if len(t) >= 4 + 32 * (w + 1):
                ids.append((100 + i) * 2 + w)
                wins.append(t[4 + 32 * w : 4 + 32 * (w + 1)])
    pq.write_table(pa.table({"seq_idx": pa.array(ids, pa.int64()),
                             "tokens": pa.array(wins, pa.list_(pa.int32()))}), flat)  # fmt: skip
    kw = {"prompt_len": 16, "cont_len": 16}
    ref = pq.read_table(_run(tiny_suite, flat, tmp_path / "ref", **kw).parquet)
    res = _run(tiny_suite, data, tmp_path / "w", offset=4, windows_per_row=2, **kw)
    got = pq.read_table(res.parquet)
    assert got.num_rows == 119 and 211 not in got.column("seq_idx").to_pylist()
    for col in ("seq_idx", "prefix_match_len", "exact_match"):
        assert got.column(col).equals(ref.column(col))
    m = contract.read_manifest(res.manifest)
    assert m["n_skipped_short"] == 1 and m["windows_per_row"] == 2
    assert m["data_fingerprint"].endswith("-w2x32-o4")
    meta = pq.read_table(
        out_meta := contract.sequences_meta_path(tmp_path / "w", m["data_fingerprint"])
    )
    assert out_meta.is_file() and meta.num_rows == 120
    dup = dict(
        zip(meta.column("seq_idx").to_pylist(), meta.column("duplicates").to_pylist(), strict=True)
    )
    assert dup[200] == dup[201] == full.column("duplicates")[0].as_py()
