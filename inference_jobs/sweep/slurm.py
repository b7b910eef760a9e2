"""SLURM executor: one sbatch array script per submission, submitted with `sbatch --parsable`.

The script is written next to the outputs (``ROOT/sweeps/<name>/submit-0003.sbatch``) as a
plain file a user can read, edit and resubmit by hand. Array task i runs task i of the
submission's work list. Arrays longer than the cluster's MaxArraySize are submitted as
several arrays of the same script, each shifted by ``MEMWH_TASK_OFFSET``.

Preemption / time limits: ``--signal=B:USR1@<secs>`` makes SLURM signal the batch shell
before the limit; the shell forwards USR1 to memwh, which finishes its current batch,
keeps what is done and exits 75; the shell then runs ``scontrol requeue`` so the task
starts again later and resumes. SIGTERM (scancel, preemption with GraceTime) is forwarded
too but never requeues by itself: a cancelled task stays cancelled until `memwh submit`.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from memwh.core.errors import MemwhError

from .spec import SweepSpec

DEFAULT_MAX_ARRAY_SIZE = 1001
REQUEUE_EXIT_CODE = 75  # EX_TEMPFAIL: "preempted, run me again"


def memwh_command(spec: SweepSpec | None = None) -> list[str]:
    """How nodes start memwh: the spec's `slurm.memwh`, else this installation's script."""
    if spec is not None and spec.slurm.memwh:
        return shlex.split(spec.slurm.memwh)
    script = Path(sys.executable).parent / "memwh"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from memwh.cli import main; main()"]


@lru_cache(maxsize=1)
def max_array_size() -> int:
    """MaxArraySize from `scontrol show config` (array indexes must be below it)."""
    if shutil.which("scontrol") is None:
        return DEFAULT_MAX_ARRAY_SIZE
    try:
        out = subprocess.run(
            ["scontrol", "show", "config"], capture_output=True, text=True, timeout=20
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return DEFAULT_MAX_ARRAY_SIZE
    m = re.search(r"^MaxArraySize\s*=\s*(\d+)", out, re.MULTILINE)
    return int(m.group(1)) if m and int(m.group(1)) > 0 else DEFAULT_MAX_ARRAY_SIZE


def array_chunks(n_tasks: int, max_size: int) -> list[tuple[int, int]]:
    """(offset, count) pieces so that every array index stays below MaxArraySize."""
    if n_tasks < 1:
        return []
    step = max(1, max_size)
    return [(off, min(step, n_tasks - off)) for off in range(0, n_tasks, step)]


def array_arg(count: int, max_parallel: int | None) -> str:
    rng = f"0-{count - 1}" if count > 1 else "0"
    return f"{rng}%{max_parallel}" if max_parallel else rng


def render_script(
    spec: SweepSpec,
    worklist_path: Path,
    n_tasks: int,
    log_dir: Path,
    *,
    max_parallel: int | None = None,
    max_size: int | None = None,
    command: list[str] | None = None,
) -> str:
    """The sbatch array script of one submission (pure text; nothing is written)."""
    r = spec.slurm
    max_size = max_size or max_array_size()
    chunks = array_chunks(n_tasks, max_size)
    first_count = chunks[0][1] if chunks else 1
    max_parallel = max_parallel or r.max_parallel
    cmd = " ".join(shlex.quote(c) for c in (command or memwh_command(spec)))
    sb: list[str] = [
        f"--job-name={r.job_name or 'memwh-' + spec.name}",
        f"--array={array_arg(first_count, max_parallel)}",
        f"--output={log_dir}/%A_%a.log",
        "--open-mode=append",
    ]
    if r.signal_seconds:
        sb.append(f"--signal=B:USR1@{r.signal_seconds}")
    sb.append("--requeue" if r.requeue else "--no-requeue")
    sb.extend(
        f"--{flag}={value}"
        for flag, value in (
            ("partition", r.partition),
            ("account", r.account),
            ("qos", r.qos),
            ("gpus", r.gpus),
            ("cpus-per-task", r.cpus),
            ("mem", r.mem),
            ("time", r.time),
        )
        if value
    )
    sb.extend(r.extra)

    lines = [
        "#!/bin/bash",
        f"# memwh sweep {spec.name!r}: {n_tasks} task(s) of work list {worklist_path.name}",
        f"# spec: {spec.path}",
        "# Array task i runs task i of the work list (JSON, same folder). Resubmit by hand with",
        f"#   sbatch {worklist_path.with_name(worklist_path.name.replace('worklist-', 'submit-').replace('.json', '.sbatch'))}",
        "# or, better, `memwh submit SPEC`, which writes a new work list with only the missing tasks.",
    ]
    if len(chunks) > 1:
        lines.append(
            f"# {n_tasks} tasks > MaxArraySize {max_size}: memwh submits {len(chunks)} arrays of this "
            "script with --array and MEMWH_TASK_OFFSET on the sbatch command line."
        )
    lines += [f"#SBATCH {o}" for o in sb]
    lines += ["", "set -uo pipefail"]
    if r.setup:
        lines += ["", "# setup (from the spec's slurm.setup)", *r.setup]
    lines += [
        "",
        f"WORKLIST={shlex.quote(str(worklist_path))}",
        f"MEMWH=({cmd})",
        "TASK_ID=$(( SLURM_ARRAY_TASK_ID + ${MEMWH_TASK_OFFSET:-0} ))",
        'export OMP_NUM_THREADS="${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}"',
        "",
        "# SLURM sends USR1 to this shell before the time limit (--signal=B:USR1@...): forward it;",
        f"# memwh finishes the current batch, keeps completed batches and exits {REQUEUE_EXIT_CODE}, then this",
        "# task is requeued and resumes. TERM (scancel) is forwarded but never requeues.",
        "child=''",
        "preempted=0",
        'on_usr1() { preempted=1; [ -n "$child" ] && kill -USR1 "$child" 2>/dev/null; }',
        'on_term() { [ -n "$child" ] && kill -TERM "$child" 2>/dev/null; }',
        "trap on_usr1 USR1",
        "trap on_term TERM",
        "",
        'echo "memwh: $(date -u +%FT%TZ) job ${SLURM_JOB_ID} (array ${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID},'
        ' restart ${SLURM_RESTART_COUNT:-0}) on $(hostname), shell pid $$: task ${TASK_ID} of ${WORKLIST}"',
        '"${MEMWH[@]}" sweep run-task "$WORKLIST" "$TASK_ID" &',
        "child=$!",
        "rc=0",
        'wait "$child" || rc=$?',
        "# `wait` returns early (status > 128) when a trapped signal arrives: wait for memwh itself.",
        'while kill -0 "$child" 2>/dev/null; do rc=0; wait "$child" || rc=$?; done',
        'if [ "$rc" -gt 128 ]; then r2=0; wait "$child" 2>/dev/null || r2=$?; [ "$r2" -ne 127 ] && rc=$r2; fi',
    ]
    if r.requeue:
        lines += [
            f'if [ "$rc" -eq {REQUEUE_EXIT_CODE} ] && [ "$preempted" -eq 1 ]; then',
            '  echo "memwh: task ${TASK_ID} stopped before the time limit; requeueing job ${SLURM_JOB_ID}"',
            '  scontrol requeue "$SLURM_JOB_ID" && exit 0',
            "fi",
        ]
    lines.append('exit "$rc"')
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ArrayJob:
    """One submitted array: its job id and which slice of the work list it covers."""

    job_id: str
    offset: int
    count: int


def require_sbatch() -> None:
    if shutil.which("sbatch") is None:
        raise MemwhError(
            "sbatch not found on PATH: run `memwh submit` on a SLURM login node, "
            "or use --executor local"
        )


def submit_script(
    script: Path, n_tasks: int, *, max_parallel: int | None, max_size: int | None = None
) -> list[ArrayJob]:
    """sbatch --parsable the script once per MaxArraySize chunk; returns the array job ids."""
    require_sbatch()
    max_size = max_size or max_array_size()
    jobs: list[ArrayJob] = []
    for offset, count in array_chunks(n_tasks, max_size):
        cmd = ["sbatch", "--parsable"]
        if offset or n_tasks > max_size:
            cmd += [
                f"--array={array_arg(count, max_parallel)}",
                f"--export=ALL,MEMWH_TASK_OFFSET={offset}",
            ]
        cmd.append(str(script))
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            done = ", ".join(j.job_id for j in jobs)
            msg = " ".join((proc.stderr or proc.stdout).split()) or f"exit code {proc.returncode}"
            extra = f" (already submitted: {done})" if done else ""
            raise MemwhError(f"sbatch {script} failed: {msg}{extra}")
        job_id = proc.stdout.strip().split(";")[0]
        if not job_id.isdigit():
            raise MemwhError(f"sbatch {script}: unexpected output {proc.stdout.strip()!r}")
        jobs.append(ArrayJob(job_id=job_id, offset=offset, count=count))
    return jobs


def squeue_tasks() -> dict[str, str] | None:
    """State of every array task SLURM still knows ("123_4" -> "RUNNING"); None without SLURM.

    Uses `squeue --states=all`, which also lists recently ended tasks (CANCELLED, FAILED,
    TIMEOUT...) for MinJobAge seconds; sacct is tried for older ones by `sacct_tasks`.
    """
    if shutil.which("squeue") is None:
        return None
    try:
        proc = subprocess.run(
            ["squeue", "-h", "-r", "--states=all", "-o", "%i|%T"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    states: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        job, _, state = line.strip().partition("|")
        if job and state:
            states[job] = state
    return states


def sacct_tasks(job_ids: list[str]) -> dict[str, str]:
    """Final states from accounting when it is enabled ({} when sacct is missing/disabled)."""
    if not job_ids or shutil.which("sacct") is None:
        return {}
    try:
        proc = subprocess.run(
            ["sacct", "-n", "-P", "-X", "-j", ",".join(job_ids), "-o", "JobID,State"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    if proc.returncode != 0:
        return {}
    out: dict[str, str] = {}
    for line in proc.stdout.splitlines():
        job, _, state = line.strip().partition("|")
        if job and state:
            out[job] = state.split()[0]
    return out


ACTIVE_STATES = frozenset(
    {
        "PENDING",
        "RUNNING",
        "CONFIGURING",
        "COMPLETING",
        "REQUEUED",
        "REQUEUE_FED",
        "REQUEUE_HOLD",
        "RESIZING",
        "SUSPENDED",
        "STAGE_OUT",
        "SIGNALING",
        "STOPPED",
    }
)
