"""Work lists: written once per submission, array task id -> task.

Every submission gets its own numbered file ``ROOT/sweeps/<name>/worklist-0003.json`` that
freezes the tasks it runs (and the scoring options), and array task ``i`` runs entry ``i``.
Resubmitting the missing tasks writes a *new* file, so ids of an earlier submission that is
still queued or running never shift (datatrove's executors work the same way). Task
markers (``tasks/<task>.json``, last state of each task) and per-submission records
(``submit-0003.json``: executor, job ids) live beside it and feed `memwh status`.
"""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memwh.core.contract import atomic_write_bytes
from memwh.core.errors import MemwhError

from .spec import ScoringOptions, SweepSpec
from .tasks import Task

WORKLIST_VERSION = 1
_WL_RE = re.compile(r"^worklist-(\d{4,})\.json$")


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class WorkList:
    """A frozen submission: which tasks, in which order, with which options."""

    path: Path
    sweep: str
    submission: int
    out: Path
    data: str
    scoring: ScoringOptions
    tasks: tuple[Task, ...]
    executor: str

    @property
    def sweep_dir(self) -> Path:
        return self.path.parent

    def task(self, task_id: int) -> Task:
        if not 0 <= task_id < len(self.tasks):
            raise MemwhError(f"{self.path}: task id {task_id} is outside 0..{len(self.tasks) - 1}")
        return self.tasks[task_id]

    @property
    def log_dir(self) -> Path:
        return log_dir(self.sweep_dir, self.submission)


def sweep_paths(sweep_dir: Path, n: int) -> dict[str, Path]:
    """File names of submission n (worklist, sbatch script, submission record)."""
    return {
        "worklist": sweep_dir / f"worklist-{n:04d}.json",
        "sbatch": sweep_dir / f"submit-{n:04d}.sbatch",
        "record": sweep_dir / f"submit-{n:04d}.json",
    }


def log_dir(sweep_dir: Path, n: int) -> Path:
    return sweep_dir / "logs" / f"submit-{n:04d}"


def markers_dir(sweep_dir: Path) -> Path:
    return sweep_dir / "tasks"


def submissions(sweep_dir: Path) -> list[int]:
    """Numbers of all submissions made so far, ascending."""
    if not sweep_dir.is_dir():
        return []
    return sorted(int(m.group(1)) for p in sweep_dir.iterdir() if (m := _WL_RE.match(p.name)))


def next_submission(sweep_dir: Path) -> int:
    """The number the next work list would get (for --dry-run previews)."""
    done = submissions(sweep_dir)
    return (done[-1] + 1) if done else 1


def write_worklist(spec: SweepSpec, tasks: list[Task], executor: str) -> WorkList:
    """Create the next numbered work list exclusively (two racing submits never share one)."""
    if not tasks:
        raise MemwhError("no tasks to write into a work list")
    sweep_dir = spec.sweep_dir
    sweep_dir.mkdir(parents=True, exist_ok=True)
    n = next_submission(sweep_dir)
    payload: dict[str, Any] = {
        "worklist_version": WORKLIST_VERSION,
        "sweep": spec.name,
        "spec": str(spec.path),
        "submission": n,
        "created_at": now_iso(),
        "host": socket.gethostname(),
        "executor": executor,
        "out": str(spec.out),
        "data": spec.data,
        "scoring": asdict(spec.scoring),
        "tasks": [u.to_json() for u in tasks],
    }
    data = (json.dumps(payload, indent=1) + "\n").encode()
    while True:
        path = sweep_paths(sweep_dir, n)["worklist"]
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            n += 1
            payload["submission"] = n
            data = (json.dumps(payload, indent=1) + "\n").encode()
            continue
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        break
    log_dir(sweep_dir, n).mkdir(parents=True, exist_ok=True)
    markers_dir(sweep_dir).mkdir(parents=True, exist_ok=True)
    return load_worklist(path)


def load_worklist(path: str | Path) -> WorkList:
    """Read a work list written by write_worklist; MemwhError if it is not one."""
    path = Path(path)
    try:
        d = json.loads(path.read_text())
        scoring = ScoringOptions.from_json(d["scoring"])
        tasks = tuple(
            Task.from_json(u) for u in d.get("tasks", d.get("units", ()))
        )  # "units": older work lists
        return WorkList(
            path=path.resolve(),
            sweep=d["sweep"],
            submission=int(d["submission"]),
            out=Path(d["out"]),
            data=d["data"],
            scoring=scoring,
            tasks=tasks,
            executor=d.get("executor", "slurm"),
        )
    except FileNotFoundError:
        raise MemwhError(f"{path}: work list not found") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise MemwhError(f"{path}: not a memwh work list ({type(e).__name__}: {e})") from None


def write_record(sweep_dir: Path, n: int, record: dict[str, Any]) -> Path:
    """The submission record (executor, job ids and their task offsets) used by status."""
    path = sweep_paths(sweep_dir, n)["record"]
    atomic_write_bytes(path, (json.dumps(record, indent=1) + "\n").encode())
    return path


def read_record(sweep_dir: Path, n: int) -> dict[str, Any] | None:
    path = sweep_paths(sweep_dir, n)["record"]
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def write_marker(sweep_dir: Path, task: Task, state: str, **info: Any) -> None:
    """Last known state of a task (running / done / skipped / preempted / failed)."""
    d = {"task": task.key, "state": state, "updated_at": now_iso(), **info}
    path = markers_dir(sweep_dir) / f"{task.file_key}.json"
    atomic_write_bytes(path, (json.dumps(d, indent=1, default=str) + "\n").encode())


def read_marker(sweep_dir: Path, task: Task) -> dict[str, Any] | None:
    path = markers_dir(sweep_dir) / f"{task.file_key}.json"
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
