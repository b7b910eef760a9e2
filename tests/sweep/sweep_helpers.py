"""Helpers shared by the sweep tests (the CLI as a subprocess, spec writer, queue waits)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

MEMWH = [str(Path(sys.executable).parent / "memwh")]
if not Path(MEMWH[0]).is_file():
    MEMWH = [sys.executable, "-c", "from memwh.cli import main; main()"]


def write_spec(
    path: Path,
    *,
    out: Path,
    data: Path,
    models: list[tuple[str, Path]],
    revisions: tuple[str, ...] = ("step1", "step2"),
    shards: int = 2,
    seq_range: tuple[int, int] = (0, 256),
    batch_size: int = 32,
    name: str = "t",
    extra_slurm: str = "",
    scoring: dict[str, str] | None = None,
) -> Path:
    """A TOML sweep spec for the tiny suite (CPU, fp32, cpus=1 per task). `scoring`: [scoring]
    keys to set or replace, as TOML values (``{"verify": "true"}``)."""
    sc = {"prompt_len": "32", "cont_len": "32", "mode": '"fast"', "batch_size": str(batch_size),
          "dtype": '"float32"', "device": '"cpu"', **(scoring or {})}  # fmt: skip
    lines = [
        f'name = "{name}"',
        f'out = "{out}"',
        f'data = "{data}"',
        f"seq_range = [{seq_range[0]}, {seq_range[1]}]",
        f"shards = {shards}",
        "",
        "[scoring]",
        *(f"{k} = {v}" for k, v in sc.items()),
        "",
        "[slurm]",
        "cpus = 1",
        'mem = "1G"',
        'time = "00:10:00"',
        "signal_seconds = 60",
        extra_slurm,
        "",
    ]
    revs = ", ".join(f'"{r}"' for r in revisions)
    for label, src in models:
        lines += [
            "[[models]]",
            f'label = "{label}"',
            f'source = "{src}"',
            f"revisions = [{revs}]",
            "",
        ]
    path.write_text("\n".join(lines))
    return path


def memwh(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the memwh CLI as a user would (a fresh process), with a wide terminal for tables."""
    env = {**os.environ, "COLUMNS": "250"}
    proc = subprocess.run([*MEMWH, *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"memwh {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def squeue_ids(job_ids: list[str]) -> list[str]:
    """Array tasks of these jobs SLURM still has pending/running."""
    out = subprocess.run(
        ["squeue", "-h", "-r", "-o", "%i|%T"], capture_output=True, text=True, check=True
    ).stdout
    return [line.split("|")[0] for line in out.splitlines() if line.split("_")[0] in job_ids]


def wait_jobs(job_ids: list[str], timeout: float = 420) -> None:
    """Block until none of the array jobs has a task left in the queue."""
    t0 = time.monotonic()
    while squeue_ids(job_ids):
        if time.monotonic() - t0 > timeout:
            raise AssertionError(
                f"jobs {job_ids} still queued after {timeout}s: {squeue_ids(job_ids)}"
            )
        time.sleep(1)
