"""Bad input -> one-line MemwhError; the CLI runs as written in the issue and maps statuses to exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import helpers
import numpy as np
import pyarrow.parquet as pq
import pytest

from memwh import inference_jobs
from memwh.core import contract
from memwh.core.errors import MemwhError

REPO = Path(__file__).resolve().parents[2]
_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny models: threads only add contention


def _score(model, data, out, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("device", "cpu")
    return inference_jobs.score(str(model), str(data), out, **kw)


@pytest.mark.parametrize(
    ("case", "pattern"),
    [
        ("missing_model", r"model folder not found"),
        ("unknown_revision", r"unknown revision 'step9'; available: step1, step2"),
        # rows too short are skipped and counted; a shard with none long enough is an error
        (
            "too_short",
            r"every sequence of the shard is shorter than the scored window \(--offset 0 \+ --prompt-len \+ --cont-len = 80 tokens\)",
        ),
        ("range_outside", r"--seq-range 0:10 is outside the data .* covers 100:160"),
        ("vocab", r"sequence 1 has token id 300 outside the model's vocabulary \(0..255\)"),
        ("unreadable", r"unreadable Parquet file"),
        ("missing_data", r"data file not found"),
        ("fast_generations", r"--save-generations needs --mode generate"),
    ],
)
def test_errors_are_one_line(case, pattern, tiny_suite, token_table, tmp_path):
    model, data, kw = tiny_suite, token_table, {"revision": "step1"}
    if case == "missing_model":
        model = tmp_path / "no-such-model"
    elif case == "unknown_revision":
        kw["revision"] = "step9"
    elif case == "too_short":
        kw.update(prompt_len=40, cont_len=40)
    elif case == "range_outside":
        kw["seq_range"] = (0, 10)
    elif case == "vocab":
        seqs = np.full((3, 64), 5)
        seqs[1, 40] = 300
        data = helpers.write_token_table(tmp_path / "v.parquet", seqs, meta=False)
    elif case == "unreadable":
        data = tmp_path / "junk.parquet"
        data.write_bytes(b"not parquet at all")
    elif case == "missing_data":
        data = tmp_path / "absent.parquet"
    elif case == "fast_generations":
        kw["save_generations"] = True
    with pytest.raises(MemwhError, match=pattern) as e:
        _score(model, data, tmp_path / "out", **kw)
    assert "\n" not in str(e.value)
    assert not list((tmp_path / "out").rglob("*.manifest.json"))


def test_cli_as_written_in_the_issue(tiny_suite, token_table, tmp_path):
    out = tmp_path / "root"
    for mode in ("fast", "generate"):
        cmd = [
            str(REPO / ".venv/bin/memwh"), "infer", "--model", str(tiny_suite), "--name", "tiny",
            "--revision", "step2", "--data", str(token_table), "--out", str(out), "--mode", mode,
            "--prompt-len", "32", "--cont-len", "32", "--device", "cpu", "--suppress-eos",
        ]  # fmt: skip
        if mode == "generate":
            cmd += ["--num-shards", "2", "--shard", "1"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=_ENV)
        assert r.returncode == 0, r.stderr
        assert "done:" in r.stderr and "memorized" in r.stderr
    fast = pq.read_table(contract.shard_paths(out, "tiny", "step2", 0, 1)[0])
    gen = pq.read_table(contract.shard_paths(out, "tiny", "step2", 1, 2)[0])
    assert gen.column("seq_idx").to_pylist() == list(range(130, 160))
    assert fast.slice(30).column("prefix_match_len").equals(gen.column("prefix_match_len"))
    bad = subprocess.run(
        [str(REPO / ".venv/bin/memwh"), "infer", "--model", str(tmp_path / "nope"), "--data", str(token_table), "--out", str(out)],
        capture_output=True, text=True, timeout=120, env=_ENV,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "model folder not found" in bad.stderr


def test_cli_exit_codes(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from memwh.cli import app

    seen = {}

    def fake_score(
        model, data, out, **kw
    ):  # stands in for the scorer to test arg parsing + exit codes
        seen.update(kw, model=model, data=data)
        p = Path(out) / "x.parquet"
        return inference_jobs.ShardResult(kw.pop("_status", "preempted"), p, p, 0, 0, 0.0)

    monkeypatch.setattr(inference_jobs, "score", fake_score, raising=False)
    r = CliRunner().invoke(
        app,
        [
            "infer",
            "--model",
            "m",
            "--data",
            "d",
            "--out",
            str(tmp_path),
            "--seq-range",
            "5:9",
            "--shard",
            "2",
            "--num-shards",
            "4",
            "--batch-size",
            "16",
        ],
    )
    assert r.exit_code == 75
    assert (
        seen["seq_range"] == (5, 9)
        and seen["shard"] == 2
        and seen["num_shards"] == 4
        and seen["batch_size"] == 16
    )
    assert seen["mode"] == "fast" and seen["dtype"] == "auto" and seen["device"] == "auto"
    r = CliRunner().invoke(
        app, ["infer", "--model", "m", "--data", "d", "--out", str(tmp_path), "--seq-range", "oops"]
    )
    assert isinstance(r.exception, MemwhError) and "START:END" in str(r.exception)


def test_hub_ids_are_not_mistaken_for_folders():
    from memwh.inference_jobs.models import resolve_model

    ref = resolve_model("EleutherAI/pythia-70m-deduped", "step143000")
    assert not ref.is_local and ref.load_path == "EleutherAI/pythia-70m-deduped"
    assert ref.name == "EleutherAI--pythia-70m-deduped" and ref.hub_revision == "step143000"
    assert resolve_model("someone/pythia-70m-deduped").name == "someone--pythia-70m-deduped"
    assert resolve_model("EleutherAI/pythia-70m", name="pythia-70m").name == "pythia-70m"
    assert resolve_model("gpt2").name == "gpt2"
    with pytest.raises(MemwhError, match="model folder not found"):
        resolve_model("./models/pythia", None)


def test_import_stays_light():
    code = "import sys, inference_jobs, memwh.cli; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


@pytest.mark.slow
def test_cli_killed_then_preempted_then_resumed(tiny_suite, tmp_path):
    """SIGKILL leaves nothing that looks complete; SIGTERM exits 75 with batches kept; a rerun finishes
    with exactly the rows of an uninterrupted run."""
    import signal
    import time

    # many 1-row batches so the run is still going when we signal it, even on a fast machine
    data = helpers.write_token_table(
        tmp_path / "many.parquet", np.random.default_rng(3).integers(3, 256, (150, 64))
    )
    ref = _score(
        tiny_suite, data, tmp_path / "ref", revision="step2", mode="generate", batch_size=1
    )
    out = tmp_path / "root"
    cmd = [
        str(REPO / ".venv/bin/memwh"), "infer", "--model", str(tiny_suite), "--revision", "step2",
        "--data", str(data), "--out", str(out), "--mode", "generate", "--batch-size", "1", "--device", "cpu",
    ]  # fmt: skip
    env = {**os.environ, "MEMWH_FLUSH_SECONDS": "0", "OMP_NUM_THREADS": "1"}
    pq_path, man_path = contract.shard_paths(out, "tiny-50k", "step2", 0, 1)
    partial = pq_path.parent / ".part-00000-of-00001.partial"

    def start_and_wait(n_files: int) -> subprocess.Popen:
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        deadline = time.time() + 120
        while (
            len(list(partial.glob("batches-*.parquet"))) < n_files
            and proc.poll() is None
            and time.time() < deadline
        ):
            time.sleep(0.01)
        assert proc.poll() is None, proc.communicate()
        return proc

    p = start_and_wait(2)
    p.send_signal(signal.SIGKILL)
    p.communicate()
    assert not man_path.exists() and not pq_path.exists()
    n_killed = len(list(partial.glob("batches-*.parquet")))
    p = start_and_wait(n_killed + 2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 75, err
    assert "preempted" in err and not man_path.exists()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr
    m = contract.read_manifest(man_path)
    assert m["attempts"] == 3 and m["n_resumed_rows"] > 0
    got = pq.read_table(pq_path).replace_schema_metadata(None)
    assert got.equals(pq.read_table(ref.parquet).replace_schema_metadata(None))


def test_hub_path_is_real_code_and_fails_cleanly_offline(token_table, tmp_path, monkeypatch):
    """No hub here: the from_pretrained(id, revision=...) path must end in a one-line error."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(
        MemwhError,
        match=r"hub model EleutherAI/pythia-14m \(revision step143000\): cannot load model",
    ) as e:
        _score("EleutherAI/pythia-14m", token_table, tmp_path, revision="step143000")
    assert "\n" not in str(e.value)
