"""Where is every task of a sweep: done / running / queued / failed / pending.

* done     the completion manifest exists and records the spec's settings (tasks.task_completion);
* conflict the shard is complete but was made with other settings (data, range, dtype, ...):
           never reused, never overwritten by a submission;
* running  its latest array task is running in SLURM (squeue), or a local worker's pid lives;
* queued   its latest array task waits in SLURM (pending, requeued after preemption);
* failed   it was submitted, its latest task is gone, and there is no manifest (cancelled,
           killed, timed out, crashed, preempted without requeue) - with the last log line;
* pending  never submitted.

SLURM's view comes from `squeue --states=all` (recently ended tasks too) and `sacct` when
accounting is enabled; without SLURM commands the task markers written by run-task are used.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from memwh.core.run_settings import Difference, describe

from .local import local_log_path
from .slurm import ACTIVE_STATES, sacct_tasks, squeue_tasks
from .spec import SweepSpec
from .tasks import Task, expand, task_completion
from .worklist import WorkList, load_worklist, read_marker, read_record, submissions

STATES = ("done", "conflict", "running", "queued", "failed", "pending")


@dataclass(frozen=True)
class TaskStatus:
    task: Task
    state: str
    detail: str = ""
    submission: int | None = None
    array_task: str | None = None  # "1234_5" (SLURM) or "local:5"
    log: Path | None = None
    last_log_line: str | None = None
    differences: tuple[Difference, ...] = ()  # conflict: recorded -> requested settings


@dataclass(frozen=True)
class SweepStatus:
    spec: SweepSpec
    tasks: tuple[TaskStatus, ...]
    executor: str | None  # of the latest submission

    def by_state(self, state: str) -> list[TaskStatus]:
        return [u for u in self.tasks if u.state == state]

    def counts(self) -> dict[str, int]:
        return {s: len(self.by_state(s)) for s in STATES}

    def resubmit_command(self) -> str:
        cmd = f"memwh submit {self.spec.path}"
        return cmd + " --executor local" if self.executor == "local" else cmd


@dataclass(frozen=True)
class _Attempt:
    """The latest submission that contains a task, and how to find its array task."""

    wl: WorkList
    task_id: int
    executor: str
    slurm_task: str | None  # "<array job id>_<index>"


def last_log_line(path: Path | None, max_chars: int = 240) -> str | None:
    """Last non-empty line of a log (read from the end; logs can be long)."""
    if path is None or not path.is_file():
        return None
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 16384))
        tail = f.read().decode(errors="replace")
    for line in reversed(tail.replace("\r", "\n").splitlines()):
        if line.strip():
            line = line.strip()
            return line if len(line) <= max_chars else line[: max_chars - 3] + "..."
    return None


def _attempts(spec: SweepSpec) -> tuple[dict[str, _Attempt], str | None]:
    latest: dict[str, _Attempt] = {}
    executor = None
    for n in submissions(spec.sweep_dir):
        try:
            wl = load_worklist(spec.sweep_dir / f"worklist-{n:04d}.json")
        except Exception:
            continue
        record = read_record(spec.sweep_dir, n) or {}
        executor = record.get("executor", wl.executor)
        slurm_task: dict[int, str] = {}
        for job in record.get("jobs", []):
            for i in range(int(job["count"])):
                slurm_task[int(job["offset"]) + i] = f"{job['job_id']}_{i}"
        for t, task in enumerate(wl.tasks):
            latest[task.key] = _Attempt(wl, t, executor, slurm_task.get(t))
    return latest, executor


def _pid_alive(marker: dict) -> bool:
    if marker.get("host") != socket.gethostname() or not marker.get("pid"):
        return False
    try:
        os.kill(int(marker["pid"]), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def sweep_status(spec: SweepSpec) -> SweepStatus:
    """Classify every task of the spec's grid (see module doc)."""
    tasks = expand(spec)
    attempts, executor = _attempts(spec)
    squeue = squeue_tasks() if any(a.slurm_task for a in attempts.values()) else None
    ended_ids = sorted(
        {
            a.slurm_task.split("_")[0]
            for a in attempts.values()
            if a.slurm_task and (squeue is None or a.slurm_task not in squeue)
        }
    )
    sacct = sacct_tasks(ended_ids) if ended_ids else {}
    out: list[TaskStatus] = []
    sources: dict = {}
    for u in tasks:
        att = attempts.get(u.key)
        done = task_completion(u, spec.out, spec.data, spec.scoring, sources)
        if done.state == "done":
            out.append(TaskStatus(u, "done", submission=att.wl.submission if att else None))
            continue
        if done.state == "conflict":
            detail = f"complete with other settings: {describe(list(done.differences))}"
            sub = att.wl.submission if att else None
            out.append(TaskStatus(u, "conflict", detail, sub, differences=done.differences))
            continue
        if att is None:
            out.append(TaskStatus(u, "pending", "not submitted yet"))
            continue
        marker = read_marker(spec.sweep_dir, u)
        if marker and marker.get("submission") != att.wl.submission:
            marker = None  # from an older attempt
        if att.slurm_task:
            log = att.wl.log_dir / f"{att.slurm_task}.log"
            task = att.slurm_task
            sstate = (squeue or {}).get(att.slurm_task) or sacct.get(att.slurm_task)
            if sstate in ACTIVE_STATES:
                state = (
                    "running"
                    if sstate in ("RUNNING", "COMPLETING", "CONFIGURING", "SIGNALING")
                    else "queued"
                )
                out.append(TaskStatus(u, state, sstate.lower(), att.wl.submission, task, log))
                continue
            if squeue is None and not sacct and marker and marker.get("state") == "running":
                out.append(
                    TaskStatus(
                        u,
                        "running",
                        "per task marker (SLURM not reachable)",
                        att.wl.submission,
                        task,
                        log,
                    )
                )
                continue
            if sstate:
                why = f"SLURM state {sstate}"
            elif squeue is None:
                why = "SLURM not reachable from here (no squeue); task state unknown"
            else:
                why = "task ended"
        else:
            log = local_log_path(att.wl, att.task_id)
            task = f"local:{att.task_id}"
            if marker and marker.get("state") == "running" and _pid_alive(marker):
                out.append(
                    TaskStatus(u, "running", f"pid {marker['pid']}", att.wl.submission, task, log)
                )
                continue
            why = "local task ended"
        if marker:
            why += f"; last state {marker.get('state')}"
            if marker.get("message"):
                why += f": {marker['message']}"
        else:
            why += "; never started" if not log.is_file() else ""
        why += " (no completion manifest)"
        out.append(TaskStatus(u, "failed", why, att.wl.submission, task, log, last_log_line(log)))
    return SweepStatus(spec=spec, tasks=tuple(out), executor=executor)
