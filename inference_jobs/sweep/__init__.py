"""Sweeps: a models x revisions x shards grid run as SLURM job arrays (or local workers).

Python API behind `memwh submit`, `memwh status` and `memwh sweep run-task`::

    from memwh.inference_jobs.sweep import load_spec, submit, status, run_task
    submit("sweep.toml", executor="slurm", dry_run=True)

Nothing here imports torch; only the per-task runner does (through inference_jobs.score).
"""

from __future__ import annotations

from .runner import run_task
from .spec import SweepSpec, load_spec
from .status import SweepStatus, TaskStatus, sweep_status
from .submit import SubmitResult, print_status, status, submit
from .tasks import Task, expand, pending

__all__ = [
    "SubmitResult",
    "SweepSpec",
    "SweepStatus",
    "Task",
    "TaskStatus",
    "expand",
    "load_spec",
    "pending",
    "print_status",
    "run_task",
    "status",
    "submit",
    "sweep_status",
]
