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
