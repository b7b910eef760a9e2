"""`memwh submit --executor local` / `memwh status` apply `memwh infer`'s reuse rule: a task is
done only when its shard was made with the spec's settings; otherwise it is a conflict."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from sweep_helpers import memwh, write_spec

from memwh.core import contract


def test_local_sweep_reuses_same_settings_and_stops_on_other_data(
    tiny_suite: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "out"

    def spec(data: Path) -> Path:
        return write_spec(
            tmp_path / "s.toml", out=out, data=data, models=[("tiny-a", tiny_suite["tiny-a"])],
            revisions=("step2",), shards=1, seq_range=(0, 64),
        )  # fmt: skip

    first = memwh("submit", str(spec(tiny_suite["data"])), "--executor", "local", timeout=600)
    assert "1/1 task(s) finished, 0 failed" in first.stdout, first.stdout
    man = contract.shard_paths(out, "tiny-a", "step2", 0, 1)[1]
    run_id = contract.read_manifest(man)["run_id"]
    again = memwh("submit", str(tmp_path / "s.toml"), "--executor", "local")
    assert "nothing to submit" in again.stdout and "1/1 tasks complete" in again.stdout

    other = tmp_path / "same-rows-other-file.parquet"
    pq.write_table(pq.read_table(tiny_suite["data"]), other, compression="snappy")
    spec(other)
    refused = memwh("submit", str(tmp_path / "s.toml"), "--executor", "local", check=False)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    line = " ".join(refused.stderr.split())
    assert "1 task(s) of sweep 't' have a complete shard made with other settings" in line
    assert "tiny-a/step2/part-00000-of-00001: data_fingerprint parquet-" in line
    assert "another label" in line and "--force" in line
    st = memwh("status", str(tmp_path / "s.toml"))
    assert "1 conflict" in st.stdout and "complete with other settings" in st.stdout
    assert contract.read_manifest(man)["run_id"] == run_id  # kept, not overwritten


def test_sweep_takes_infer_scoring_options_and_they_decide_reuse(
    tiny_suite: dict[str, Path], tmp_path: Path
) -> None:
    """Every scoring option of `memwh infer` in [scoring]: several prompt lengths, --verify,
    --offset, --windows-per-row, --keep-columns reach the shard; a shard done with another
    value of a setting is a conflict, never reused."""
    import json

    import numpy as np
    import pyarrow as pa

    rows = 40
    rng = np.random.default_rng(3)
    base = pq.read_table(tiny_suite["data"]).column("tokens").to_pylist()[:rows]
    toks = [list(t) + list(t) + list(rng.integers(1, 50, 40)) for t in base]  # 168 tokens
    data = tmp_path / "long.parquet"
    pq.write_table(
        pa.table({"seq_idx": np.arange(rows), "tokens": pa.array(toks, pa.list_(pa.int32())),
                  "source": [f"doc-{i % 3}" for i in range(rows)]}), data,
    )  # fmt: skip
    out = tmp_path / "out"
    options = {
        "prompt_len": '"16,32"', "verify": "true", "dtype": '"bfloat16"', "offset": "8",
        "windows_per_row": "2", "keep_columns": '["source"]',
    }  # fmt: skip

    def spec(**change: str) -> str:
        return str(
            write_spec(
                tmp_path / "s.toml", out=out, data=data, models=[("tiny-a", tiny_suite["tiny-a"])],
                revisions=("step2",), shards=1, seq_range=(0, 2 * rows),
                scoring={**options, **change},
            )
        )  # fmt: skip

    first = memwh("submit", spec(), "--executor", "local", timeout=600)
    assert "1/1 task(s) finished, 0 failed" in first.stdout, first.stdout
    pq_path, man_path = contract.shard_paths(out, "tiny-a", "step2", 0, 1)
    man = contract.read_manifest(man_path)
    s = man["settings"]
    assert (s["verify"], s["offset"], s["windows_per_row"]) == (True, 8, 2)
    assert man["prompt_lens"] == [16, 32] and man["dtype"] == "bfloat16"
    assert man["label_verification"]["verify"] is True
    t = pq.read_table(pq_path)
    assert t.num_rows == 2 * rows * 2  # 2 windows per row x 2 prompt lengths
    # window 1 of row 0 starts at token 8 + 64: its continuation at prompt 32 is tokens 104..136
    win = pq.read_table(next((out / "sequences").rglob("windows-*.parquet")))
    got = dict(
        zip(win.column("seq_idx").to_pylist(), win.column("tokens").to_pylist(), strict=True)
    )
    assert got[1] == toks[0][8 + 64 : 8 + 128]
    meta = pq.read_table(contract.sequences_meta_path(out, s["data_fingerprint"]))
    extra = dict(
        zip(meta.column("seq_idx").to_pylist(), meta.column("extra").to_pylist(), strict=True)
    )
    assert json.loads(extra[2 * 5 + 1]) == {"source": "doc-2"}  # row 5's second window
    run_id = man["run_id"]

    again = memwh("submit", spec(), "--executor", "local")
    assert "nothing to submit" in again.stdout, again.stdout
    for change, named in (
        ({"verify": "false"}, "verify"),
        ({"offset": "0"}, "data_fingerprint"),
        ({"windows_per_row": "4"}, "data_fingerprint"),  # seq_range (0, 80) still fits
        ({"prompt_len": "32"}, "prompt_len"),
    ):
        refused = memwh("submit", spec(**change), "--executor", "local", check=False)
        assert refused.returncode == 2, (change, refused.stdout + refused.stderr)
        line = " ".join(refused.stderr.split())
        assert "complete shard made with other settings" in line and named in line, (change, line)
    assert contract.read_manifest(man_path)["run_id"] == run_id  # kept, not overwritten
    bad = memwh("submit", spec(keep_columns='["url"]'), "--executor", "local", check=False)
    assert bad.returncode == 2 and "scoring.keep_columns" in bad.stderr, bad.stderr
