"""RunSettings: one record for completion, resume and the manifest."""

from __future__ import annotations

import json

from memwh import inference_jobs
from memwh.core import contract
from memwh.core.run_settings import RunSettings, completion

BASE = RunSettings(
    model="m", model_path="/x/m/step2", commit_hash=None, revision="step2",
    data_fingerprint="parquet-aa", seq_range=(0, 90), shard=1, num_shards=3, prompt_len=32,
    cont_len=32, mode="fast", suppress_eos=False, dtype="float32", batch_size=8,
)  # fmt: skip


def test_dict_round_trip_and_shard_bounds() -> None:
    d = BASE.to_dict()
    assert d["seq_range"] == [0, 90] and list(d)[:3] == ["model", "model_path", "commit_hash"]
    assert RunSettings.from_dict(json.loads(json.dumps(d))) == BASE
    assert (BASE.seq_start, BASE.seq_end) == contract.shard_bounds(0, 90, 1, 3) == (30, 60)
    flat = BASE.manifest_fields()
    assert flat["settings"] == d and flat["resolved_model_path"] == "/x/m/step2"
    assert "model_path" not in flat  # the manifest's model_path is --model as given


def test_differences_skip_resume_only_and_unknown_fields() -> None:
    other = BASE.with_resolved(batch_size=64, dtype="bfloat16", seq_range=(0, 99))
    diffs = BASE.differences(other)
    assert [d.name for d in diffs] == ["seq_range", "dtype"]
    assert (
        str(diffs[0]) == "seq_range 0:99 -> 0:90" and str(diffs[1]) == "dtype bfloat16 -> float32"
    )
    assert [d.name for d in BASE.differences(other, completion=False)] == [
        "seq_range", "dtype", "batch_size",
    ]  # fmt: skip
    unknown = BASE.with_resolved(dtype=None, commit_hash=None)
    assert unknown.differences(BASE.with_resolved(commit_hash="c" * 40)) == []


def test_old_manifest_without_settings_block() -> None:
    old = {
        "model": "m", "model_path": "rel/m", "resolved_model_path": "/x/m/step2",
        "revision": "step2", "data_fingerprint": "parquet-aa", "seq_range": [0, 90],
        "shard": 1, "num_shards": 3, "seq_start": 30, "seq_end": 60, "prompt_len": 32,
        "cont_len": 32, "mode": "fast", "suppress_eos": False, "dtype": "float32",
        "batch_size": 8, "commit_hash": None,
    }  # fmt: skip
    assert RunSettings.from_manifest(old) == BASE


def test_score_records_the_same_record_everywhere(tiny_suite, token_table, tmp_path) -> None:
    r = inference_jobs.score(
        str(tiny_suite), str(token_table), tmp_path, revision="step2", device="cpu",
        batch_size=16, seq_range=(100, 130), progress=False,
    )  # fmt: skip
    m = contract.read_manifest(r.manifest)
    s = RunSettings.from_manifest(m)
    assert m["settings"] == s.to_dict()
    assert s.model_path == str((tiny_suite / "step2").resolve()) and s.batch_size == 16
    assert (m["seq_start"], m["seq_end"], m["dtype"]) == (100, 130, "float32")
    assert completion(tmp_path, s).state == "done"
    assert completion(tmp_path, s.with_resolved(batch_size=1)).state == "done"
    c = completion(tmp_path, s.with_resolved(prompt_len=16))
    assert c.state == "conflict" and "prompt_len 32 -> 16" in c.message()
