"""Per-task entry point: `memwh sweep run-task WORKLIST TASK_ID` runs one task with score().

Both executors start exactly this (SLURM array task i / local worker i), so a task behaves
the same everywhere. Exit codes: 0 done or already complete, 75 preempted (requeue me),
2 a MemwhError (bad input; rerunning will not help), 1 anything else.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any

from memwh.core.errors import MemwhError

from .slurm import REQUEUE_EXIT_CODE
from .tasks import CONFLICT_WAY_OUT, task_completion
from .worklist import WorkList, load_worklist, write_marker


class _Interrupted(BaseException):
    """A preemption signal outside score()'s batch loop (BaseException: nothing swallows it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _slurm_ids() -> dict[str, Any]:
    env = os.environ
    return {
        "slurm_job_id": env.get("SLURM_JOB_ID"),
        "slurm_array_job_id": env.get("SLURM_ARRAY_JOB_ID"),
        "slurm_array_task_id": env.get("SLURM_ARRAY_TASK_ID"),
        "slurm_restart_count": env.get("SLURM_RESTART_COUNT"),
    }


def task_log_path(wl: WorkList, task_id: int) -> Path | None:
    """Where this task's stdout goes (the local executor sets it; SLURM uses %A_%a.log)."""
    if os.environ.get("MEMWH_TASK_LOG"):
        return Path(os.environ["MEMWH_TASK_LOG"])
    aj, at = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    if aj and at:
        return wl.log_dir / f"{aj}_{at}.log"
    return None


def _say(msg: str) -> None:
    print(f"memwh: {msg}", flush=True)


def run_task(worklist: str | Path, task_id: int, *, progress: bool | None = None) -> int:
    """Run task `task_id` of a work list; returns the process exit code (see module doc)."""
    wl = load_worklist(worklist)
    task = wl.task(task_id)
    common = {
        "submission": wl.submission,
        "task_id": task_id,
        "executor": wl.executor,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "log": str(task_log_path(wl, task_id) or ""),
        **_slurm_ids(),
    }
    try:
        state = task_completion(task, wl.out, wl.data, wl.scoring)
    except MemwhError as e:
        write_marker(wl.sweep_dir, task, "failed", message=str(e), **common)
        _say(f"{task.key} failed: {e}")
        return 2
    if state.state == "done":
        write_marker(wl.sweep_dir, task, "done", note="already complete", **common)
        _say(f"{task.key} is already complete; nothing to do")
        return 0
    if state.state == "conflict":
        msg = state.message(CONFLICT_WAY_OUT)
        write_marker(wl.sweep_dir, task, "failed", message=msg, **common)
        _say(f"{task.key} failed: {msg}")
        return 2

    # score() handles USR1/TERM inside its batch loop (finish the batch, keep it, return
    # "preempted"). Outside the loop (imports, model loading: seconds) a signal lands here and
    # stops the task at once; nothing half-written can look complete (atomic contract writes).
    def _early(signum: int, _frame: FrameType | None) -> None:
        raise _Interrupted(signum)

    old = {s: signal.signal(s, _early) for s in (signal.SIGUSR1, signal.SIGTERM)}
    write_marker(wl.sweep_dir, task, "running", started_at=time.time(), **common)
    _say(f"task {task_id} -> {task.key} (model {task.source}, revision {task.revision})")
    t0 = time.monotonic()
    try:
        from memwh import inference_jobs

        s = wl.scoring
        result = inference_jobs.score(
            task.source,
            task.data or wl.data,
            wl.out,
            revision=task.revision,
            name=task.model,
            prompt_len=s.prompt_len_arg,
            cont_len=s.cont_len,
            mode=s.mode,
            suppress_eos=s.suppress_eos,
            batch_size=task.batch_size,
            dtype=s.dtype,
            device=s.device,
            seq_range=task.seq_range,
            shard=task.shard,
            num_shards=task.num_shards,
            save_generations=s.save_generations,
            save_windows=s.save_windows,
            verify=s.verify,
            offset=s.offset,
            keep_columns=s.keep_columns,
            windows_per_row=s.windows_per_row,
            meta=task.meta(),
            role=task.role,
            variant_of=task.variant_of,
            method=task.method,
            method_params=task.method_params,
            progress=sys.stderr.isatty() if progress is None else progress,
        )
    except _Interrupted as e:
        name = signal.Signals(e.signum).name
        write_marker(
            wl.sweep_dir, task, "preempted", note=f"{name} outside the batch loop", **common
        )
        _say(f"{task.key}: {name} before/after scoring; exit {REQUEUE_EXIT_CODE} (rerun resumes)")
        return REQUEUE_EXIT_CODE
    except MemwhError as e:
        write_marker(wl.sweep_dir, task, "failed", message=str(e), **common)
        _say(f"{task.key} failed: {e}")
        return 2
    except Exception as e:
        traceback.print_exc()
        msg = f"{type(e).__name__}: {e}".splitlines()[0]
        write_marker(wl.sweep_dir, task, "failed", message=msg, **common)
        _say(f"{task.key} failed: {msg}")
        return 1
    finally:
        for s_, h in old.items():
            if signal.getsignal(s_) is _early:
                signal.signal(s_, h)
    seconds = time.monotonic() - t0
    if result.status == "preempted":
        write_marker(
            wl.sweep_dir, task, "preempted", n_rows=result.n_rows, seconds=seconds, **common
        )
        _say(
            f"{task.key} preempted after {seconds:.1f}s; completed batches kept; exit {REQUEUE_EXIT_CODE}"
        )
        return REQUEUE_EXIT_CODE
    write_marker(
        wl.sweep_dir,
        task,
        "done",
        status=result.status,
        n_rows=result.n_rows,
        n_exact=result.n_exact,
        seconds=seconds,
        parquet=str(result.parquet),
        **common,
    )
    _say(
        f"{task.key} {result.status}: {result.n_rows} rows, {result.n_exact} memorized, "
        f"{seconds:.1f}s -> {result.parquet}"
    )
    return 0
