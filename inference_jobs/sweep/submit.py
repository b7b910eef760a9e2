"""`memwh submit` / `memwh status`: the user-facing flow over spec -> tasks -> work list -> executor.

A submission runs the tasks that have no completion manifest and are not already queued or
running (so `memwh submit` is safe to repeat at any time: it resubmits exactly what is
missing), writes a new numbered work list, and hands it to SLURM or to local workers.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from memwh.core.errors import MemwhError
from memwh.core.run_settings import describe

from .local import LocalTaskResult, run_local
from .slurm import (
    ArrayJob,
    array_chunks,
    max_array_size,
    memwh_command,
    render_script,
    require_sbatch,
    submit_script,
)
from .spec import SweepSpec, load_spec
from .status import SweepStatus, sweep_status
from .tasks import CONFLICT_WAY_OUT, Task
from .worklist import (
    log_dir,
    next_submission,
    now_iso,
    sweep_paths,
    write_record,
    write_worklist,
)

EXECUTORS = ("slurm", "local")


@dataclass
class SubmitResult:
    """What a submission did (also returned for --dry-run, with nothing written)."""

    spec: SweepSpec
    executor: str
    tasks: list[Task]
    skipped_active: list[Task]
    n_done: int
    submission: int | None = None
    worklist: Path | None = None
    script: Path | None = None
    script_text: str | None = None
    jobs: list[ArrayJob] = field(default_factory=list)
    local_results: list[LocalTaskResult] = field(default_factory=list)

    @property
    def n_failed(self) -> int:
        return sum(r.returncode != 0 for r in self.local_results)


def submit(
    spec_path: str | Path,
    *,
    executor: str = "slurm",
    dry_run: bool = False,
    max_parallel: int | None = None,
    console: Console | None = None,
) -> SubmitResult:
    """Validate the spec, work out the missing tasks and run/submit them (see module doc)."""
    console = console or Console(soft_wrap=True)
    if executor not in EXECUTORS:
        raise MemwhError(f"--executor {executor!r} unknown; use slurm or local")
    if max_parallel is not None and max_parallel < 1:
        raise MemwhError("--max-parallel must be >= 1")
    spec = load_spec(spec_path)
    st = sweep_status(spec)
    conflicts = st.by_state("conflict")
    if conflicts:
        first = conflicts[0]
        raise MemwhError(
            f"{len(conflicts)} task(s) of sweep {spec.name!r} have a complete shard made with other "
            f"settings, e.g. {first.task.key}: {describe(list(first.differences))}; {CONFLICT_WAY_OUT}"
        )
    active = [s.task for s in st.tasks if s.state in ("running", "queued")]
    todo = [s.task for s in st.tasks if s.state in ("failed", "pending")]
    res = SubmitResult(spec, executor, todo, active, st.counts()["done"])
    if active:
        console.print(
            f"{len(active)} task(s) are still queued/running from an earlier submission; "
            "not resubmitting them (see `memwh status`)."
        )
    if not todo:
        console.print(
            f"[green]nothing to submit[/]: {res.n_done}/{len(st.tasks)} tasks complete"
            + (f", {len(active)} in flight" if active else "")
        )
        return res
    if executor == "slurm" and not dry_run:
        require_sbatch()
    command = memwh_command(spec)

    if dry_run:
        n = next_submission(spec.sweep_dir)
        paths = sweep_paths(spec.sweep_dir, n)
        res.submission = n
        if executor == "slurm":
            res.script_text = render_script(
                spec,
                paths["worklist"],
                len(todo),
                log_dir(spec.sweep_dir, n),
                max_parallel=max_parallel,
                command=command,
            )
            console.out(
                f"# {paths['sbatch']} (dry run: nothing written or submitted)", highlight=False
            )
            console.out(res.script_text, highlight=False, end="")
        console.out(
            f"# {len(todo)} task(s) for {paths['worklist'].name} (array task id -> task):",
            highlight=False,
        )
        for i, u in enumerate(todo):
            rng = f" seq_range={list(u.seq_range)}" if u.seq_range else ""
            rng += f" data={u.data}" if u.data else ""
            console.out(f"#   {i:>5}  {u.key}  ({u.source}){rng}", highlight=False)
        return res

    wl = write_worklist(spec, todo, executor)
    res.submission, res.worklist = wl.submission, wl.path
    paths = sweep_paths(spec.sweep_dir, wl.submission)
    if executor == "slurm":
        size = max_array_size()
        text = render_script(
            spec,
            wl.path,
            len(todo),
            wl.log_dir,
            max_parallel=max_parallel,
            max_size=size,
            command=command,
        )
        paths["sbatch"].write_text(text)
        paths["sbatch"].chmod(0o755)
        res.script, res.script_text = paths["sbatch"], text
        record = {
            "submission": wl.submission,
            "executor": "slurm",
            "script": str(paths["sbatch"]),
            "worklist": str(wl.path),
            "n_tasks": len(todo),
            "max_array_size": size,
            "jobs": [],
        }
        write_record(spec.sweep_dir, wl.submission, record)
        try:
            res.jobs = submit_script(
                paths["sbatch"], len(todo), max_parallel=max_parallel, max_size=size
            )
        finally:
            record["jobs"] = [
                {"job_id": j.job_id, "offset": j.offset, "count": j.count} for j in res.jobs
            ]
            record["submitted_at"] = now_iso()
            write_record(spec.sweep_dir, wl.submission, record)
        ids = ",".join(j.job_id for j in res.jobs)
        n_arrays = len(array_chunks(len(todo), size))
        console.print(
            f"submitted {len(todo)} task(s) of sweep {spec.name!r} as array job"
            f"{'s' if n_arrays > 1 else ''} {ids} (script {paths['sbatch']})",
            highlight=False,
        )
        console.print(
            f"watch it:  squeue -j {ids}   |   memwh status {shlex.quote(str(spec.path))}",
            highlight=False,
        )
        console.print(f"logs:      {wl.log_dir}/<jobid>_<task>.log", highlight=False)
        return res

    workers = max_parallel or spec.slurm.max_parallel or 1
    write_record(
        spec.sweep_dir,
        wl.submission,
        {
            "submission": wl.submission,
            "executor": "local",
            "worklist": str(wl.path),
            "n_tasks": len(todo),
            "workers": workers,
            "submitted_at": now_iso(),
        },
    )
    console.print(
        f"running {len(todo)} task(s) of sweep {spec.name!r} locally, {workers} at a time "
        f"(logs in {wl.log_dir})",
        highlight=False,
    )
    res.local_results = run_local(
        wl, command, workers=workers, threads=spec.slurm.cpus, console=console
    )
    for r in res.local_results:
        if r.returncode != 0:
            from .status import last_log_line

            console.print(
                f"[red]failed[/] {r.task} (exit {r.returncode}): {last_log_line(r.log) or 'no output'}",
                highlight=False,
            )
    secs = max((r.seconds for r in res.local_results), default=0.0)
    console.print(
        f"local sweep: {len(todo) - res.n_failed}/{len(todo)} task(s) finished, {res.n_failed} failed "
        f"(longest task {secs:.1f}s)",
        highlight=False,
    )
    return res


def print_status(
    st: SweepStatus, console: Console | None = None, *, all_tasks: bool = False
) -> None:
    """Summary counts, a table of tasks not done (or all), failed tasks' last log line."""
    console = console or Console(soft_wrap=True)
    counts = st.counts()
    total = len(st.tasks)
    table = Table(title=f"sweep {st.spec.name} ({st.spec.out})", title_justify="left")
    for col in ("task", "state", "submission", "array task", "detail"):
        table.add_column(col, overflow="fold")
    color = {
        "done": "green",
        "running": "cyan",
        "queued": "blue",
        "failed": "red",
        "pending": "yellow",
        "conflict": "magenta",
    }
    shown = [u for u in st.tasks if all_tasks or u.state != "done"]
    limit = len(shown) if all_tasks else 50
    for u in shown[:limit]:
        table.add_row(
            u.task.key,
            f"[{color[u.state]}]{u.state}[/]",
            str(u.submission or ""),
            u.array_task or "",
            u.detail,
        )
    if shown:
        console.print(table)
    if len(shown) > limit:
        console.print(f"... and {len(shown) - limit} more (memwh status --all lists every task)")
    console.print(
        " · ".join(f"{counts[s]} {s}" for s in counts) + f"  (of {total} tasks)", highlight=False
    )
    failed = st.by_state("failed")
    for u in failed:
        console.print(f"[red]failed[/] {u.task.key}: {u.detail}", highlight=False)
        if u.last_log_line:
            console.print(
                f"  last log line ({u.log}): {u.last_log_line}", highlight=False, markup=False
            )
    if counts["conflict"]:
        console.print(
            f"[magenta]{counts['conflict']} conflict(s)[/]: complete shards made with other "
            f"settings are kept, never reused; {CONFLICT_WAY_OUT}",
            highlight=False,
        )
    if failed or counts["pending"]:
        console.print(f"resubmit the missing tasks with:  {st.resubmit_command()}", highlight=False)


def status(
    spec_path: str | Path, *, console: Console | None = None, all_tasks: bool = False
) -> SweepStatus:
    """Load the spec, classify its tasks and print the report; returns the status object."""
    st = sweep_status(load_spec(spec_path))
    print_status(st, console, all_tasks=all_tasks)
    return st
