"""Sweeps against a REAL single-node SLURM (scripts/start_slurm.sh, started by the fixture).

1. 2 models x 2 revisions x 2 shards through sbatch: every task complete and row-for-row
   identical to the local executor's output.
2. One array task is cancelled mid-run (scancel) and another is "preempted" (USR1 to the
   batch shell, as --signal=B:USR1@... does before the time limit): the preempted one
   requeues itself and finishes; `memwh status` names the cancelled task; `memwh submit`
   resubmits only it; the final rows equal an uninterrupted run's.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import polars as pl
import pytest
from sweep_helpers import memwh, squeue_ids, wait_jobs, write_spec

from memwh.core import contract

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

SEQ_RANGE = (0, 256)


def _rows(root: Path) -> dict[str, pl.DataFrame]:
    """Every complete shard under root, keyed by its path relative to scores/."""
    out = {}
    for man in contract.iter_manifests(root):
        m = contract.read_manifest(man)
        pq_path = man.with_name(m["parquet_file"])
        out[str(pq_path.relative_to(root / "scores"))] = pl.read_parquet(pq_path).sort("seq_idx")
    return out


def _assert_same_rows(got: dict[str, pl.DataFrame], ref: dict[str, pl.DataFrame]) -> None:
    assert sorted(got) == sorted(ref)
    for key, df in got.items():
        assert df.height > 0
        assert df.equals(ref[key], null_equal=True), f"rows differ in {key}"


def _jobs(sweep_dir: Path, n: int) -> list[str]:
    record = json.loads((sweep_dir / f"submit-{n:04d}.json").read_text())
    return [j["job_id"] for j in record["jobs"]]


@pytest.fixture(scope="session")
def local_reference(tiny_suite: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The grid run by the local executor (2 workers), uninterrupted: the reference rows."""
    tmp = tmp_path_factory.mktemp("sweep-local")
    spec = write_spec(
        tmp / "local.toml",
        out=tmp / "out",
        data=tiny_suite["data"],
        models=[("tiny-a", tiny_suite["tiny-a"]), ("tiny-b", tiny_suite["tiny-b"])],
        seq_range=SEQ_RANGE,
    )
    proc = memwh("submit", str(spec), "--executor", "local", "--max-parallel", "2", timeout=600)
    assert "8/8 task(s) finished, 0 failed" in proc.stdout, proc.stdout
    return tmp / "out"


def test_slurm_array_sweep_equals_local_executor(
    slurm_cluster: str, tiny_suite: dict[str, Path], local_reference: Path, tmp_path: Path
) -> None:
    spec = write_spec(
        tmp_path / "grid.toml",
        out=tmp_path / "out",
        data=tiny_suite["data"],
        models=[("tiny-a", tiny_suite["tiny-a"]), ("tiny-b", tiny_suite["tiny-b"])],
        seq_range=SEQ_RANGE,
    )
    proc = memwh("submit", str(spec), "--max-parallel", "2")
    sweep_dir = tmp_path / "out" / "sweeps" / "t"
    jobs = _jobs(sweep_dir, 1)
    assert len(jobs) == 1
    assert f"squeue -j {jobs[0]}" in proc.stdout and "memwh status" in proc.stdout
    script = (sweep_dir / "submit-0001.sbatch").read_text()
    assert "#SBATCH --array=0-7%2" in script
    wait_jobs(jobs)

    st = memwh("status", str(spec))
    assert "8 done · 0 conflict · 0 running · 0 queued · 0 failed · 0 pending" in st.stdout, (
        st.stdout
    )
    got = _rows(tmp_path / "out")
    assert len(got) == 8
    _assert_same_rows(got, _rows(local_reference))
    # Provenance: each shard knows the array task that wrote it.
    for man in contract.iter_manifests(tmp_path / "out"):
        m = contract.read_manifest(man)
        assert str(m.get("slurm_array_job_id")) == jobs[0]
        assert m.get("slurm_array_task_id") is not None
    # Submitting again finds nothing to do.
    again = memwh("submit", str(spec))
    assert "nothing to submit" in again.stdout and not (sweep_dir / "worklist-0002.json").exists()


def _wait_running(sweep_dir: Path, task_keys: list[str], timeout: float = 120) -> None:
    """Until run-task has started each task (its marker says running under SLURM)."""
    t0 = time.monotonic()
    while True:
        ok = 0
        for key in task_keys:
            marker = sweep_dir / "tasks" / f"{key.replace('/', '__')}.json"
            if marker.is_file():
                m = json.loads(marker.read_text())
                ok += m.get("state") == "running" and m.get("slurm_job_id") is not None
        if ok == len(task_keys):
            return
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"tasks {task_keys} not running after {timeout}s")
        time.sleep(0.2)


def test_cancelled_task_is_reported_and_resubmitted_alone(
    slurm_cluster: str, tiny_suite: dict[str, Path], local_reference: Path, tmp_path: Path
) -> None:
    spec = write_spec(
        tmp_path / "cancel.toml",
        out=tmp_path / "out",
        data=tiny_suite["data"],
        models=[("tiny-a", tiny_suite["tiny-a"])],
        seq_range=SEQ_RANGE,
    )
    memwh("submit", str(spec), "--max-parallel", "2")
    sweep_dir = tmp_path / "out" / "sweeps" / "t"
    (job,) = _jobs(sweep_dir, 1)
    preempted = "tiny-a/step1/part-00000-of-00002"  # array task 0
    cancelled = "tiny-a/step1/part-00001-of-00002"  # array task 1
    _wait_running(sweep_dir, [preempted, cancelled])
    assert {f"{job}_0", f"{job}_1"} <= set(squeue_ids([job]))

    # What --signal=B:USR1@secs does before a time limit: USR1 to the batch shell only. Sent
    # straight to the shell (its pid is in the task log): `scancel --signal=USR1 --batch` goes
    # through slurmctld, which under load delivered it seconds late, after this small task was
    # already done, and 22.05 answers "Job can not be altered now" for jobs with --signal set.
    log0 = sweep_dir / "logs" / "submit-0001" / f"{job}_0.log"
    shell_pid = int(re.search(r"shell pid (\d+):", log0.read_text()).group(1))
    os.kill(shell_pid, signal.SIGUSR1)
    subprocess.run(["scancel", f"{job}_1"], check=True, timeout=60)
    t0 = time.monotonic()
    while "requeueing job" not in (log0.read_text() if log0.is_file() else ""):
        assert time.monotonic() - t0 < 90, f"task 0 did not requeue itself: {log0.read_text()}"
        time.sleep(0.5)
    # SLURM holds a requeued job back (BeginTime, ~2 min); release it now to keep the test short.
    t0 = time.monotonic()
    while subprocess.run(
        ["scontrol", "update", f"JobId={job}_0", "StartTime=now"], capture_output=True
    ).returncode:
        assert time.monotonic() - t0 < 30, "could not release the requeued task"
        time.sleep(0.5)
    wait_jobs([job])

    st = memwh("status", str(spec))
    assert "3 done · 0 conflict · 0 running · 0 queued · 1 failed · 0 pending" in st.stdout, (
        st.stdout
    )
    failed_line = next(line for line in st.stdout.splitlines() if line.startswith("failed "))
    assert cancelled in failed_line and "CANCELLED" in failed_line, st.stdout
    assert "last log line" in st.stdout
    assert f"memwh submit {spec}" in st.stdout
    # The preempted task requeued itself and completed in its second run.
    text0 = log0.read_text()
    assert "restart 1" in text0 and f"{preempted} done" in text0, text0

    proc = memwh("submit", str(spec))
    wl2 = json.loads((sweep_dir / "worklist-0002.json").read_text())
    assert [u["shard"] for u in wl2["tasks"]] == [1] and wl2["tasks"][0]["revision"] == "step1"
    assert "submitted 1 task(s)" in proc.stdout
    wait_jobs(_jobs(sweep_dir, 2))

    st = memwh("status", str(spec))
    assert "4 done · 0 conflict · 0 running · 0 queued · 0 failed · 0 pending" in st.stdout, (
        st.stdout
    )
    ref = {k: v for k, v in _rows(local_reference).items() if k.startswith("model=tiny-a/")}
    _assert_same_rows(_rows(tmp_path / "out"), ref)
