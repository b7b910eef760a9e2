"""Local executor: the same tasks as N parallel subprocesses, no SLURM needed.

Each worker runs `memwh sweep run-task WORKLIST i` exactly like an array task, with its
output in ``logs/submit-000n/task-0000i.log``, so `memwh status` and resubmission behave
the same as on a cluster. Ctrl-C forwards SIGTERM: running tasks finish their current batch
and keep it (they resume on the next submit).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .worklist import WorkList


@dataclass(frozen=True)
class LocalTaskResult:
    task_id: int
    task: str
    returncode: int
    seconds: float
    log: Path


def local_log_path(wl: WorkList, task_id: int) -> Path:
    return wl.log_dir / f"task-{task_id:05d}.log"


def run_local(
    wl: WorkList,
    command: list[str],
    *,
    workers: int = 1,
    threads: int | None = None,
    console: Console | None = None,
) -> list[LocalTaskResult]:
    """Run every task of the work list, `workers` at a time; returns one result per task."""
    console = console or Console(stderr=True)
    workers = max(1, workers)
    wl.log_dir.mkdir(parents=True, exist_ok=True)
    todo = list(range(len(wl.tasks)))
    running: dict[int, tuple[subprocess.Popen[bytes], float, object]] = {}
    results: list[LocalTaskResult] = []
    base_env = dict(os.environ)
    # Like an sbatch task: `threads` = the spec's cpus per task; else share the machine's cores.
    base_env.setdefault("OMP_NUM_THREADS", str(threads or max(1, (os.cpu_count() or 1) // workers)))

    def start(i: int) -> None:
        log = local_log_path(wl, i)
        env = {**base_env, "MEMWH_TASK_LOG": str(log)}
        fh = open(log, "ab")  # noqa: SIM115 - closed when the task ends
        proc = subprocess.Popen(
            [*command, "sweep", "run-task", str(wl.path), str(i)],
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        running[i] = (proc, time.monotonic(), fh)

    def reap(i: int, rc: int) -> None:
        _proc, t0, fh = running.pop(i)
        fh.close()  # type: ignore[attr-defined]
        results.append(
            LocalTaskResult(i, wl.tasks[i].key, rc, time.monotonic() - t0, local_log_path(wl, i))
        )

    with Progress(
        TextColumn("[bold]local sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    ) as bar:
        job = bar.add_task("", total=len(todo))
        try:
            while todo or running:
                while todo and len(running) < workers:
                    start(todo.pop(0))
                for i, (proc, _, _) in list(running.items()):
                    rc = proc.poll()
                    if rc is not None:
                        reap(i, rc)
                        bar.advance(job)
                        failed = sum(r.returncode != 0 for r in results)
                        bar.update(job, description=f"{failed} failed" if failed else "")
                time.sleep(0.2)
        except KeyboardInterrupt:
            console.print("[yellow]interrupted: asking running tasks to stop after their batch[/]")
            for proc, _, _ in running.values():
                proc.send_signal(signal.SIGTERM)
            for i, (proc, _, _) in list(running.items()):
                reap(i, proc.wait())
            raise
    return sorted(results, key=lambda r: r.task_id)
