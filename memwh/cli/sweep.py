"""`memwh submit`, `memwh status` and `memwh sweep run-task`: sweeps as SLURM job arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    """Add the sweep commands to the memwh CLI."""

    @app.command("submit")
    def submit_cmd(
        spec: Annotated[Path, typer.Argument(help="Sweep spec (.toml or .yaml).")],
        dry_run: Annotated[
            bool,
            typer.Option(
                "--dry-run", help="Print the sbatch script and the tasks; submit nothing."
            ),
        ] = False,
        executor: Annotated[
            str,
            typer.Option("--executor", help="slurm (sbatch job arrays) or local (subprocesses)."),
        ] = "slurm",
        max_parallel: Annotated[
            int | None,
            typer.Option(
                "--max-parallel", help="Array tasks running at once (%N); local: worker count."
            ),
        ] = None,
    ) -> None:
        """Run every task of a sweep that has no completion manifest (safe to repeat)."""
        from memwh.inference_jobs.sweep import submit

        res = submit(spec, executor=executor, dry_run=dry_run, max_parallel=max_parallel)
        if res.n_failed:
            raise typer.Exit(1)

    @app.command("status")
    def status_cmd(
        spec: Annotated[Path, typer.Argument(help="Sweep spec (.toml or .yaml).")],
        all_tasks: Annotated[bool, typer.Option("--all", help="List done tasks too.")] = False,
    ) -> None:
        """Done / running / queued / failed / pending tasks, and how to resubmit the missing ones."""
        from memwh.inference_jobs.sweep import status

        status(spec, all_tasks=all_tasks)

    sweep_app = typer.Typer(help="Sweep internals (what array tasks run).", no_args_is_help=True)

    @sweep_app.command("run-task")
    def run_task_cmd(
        worklist: Annotated[
            Path, typer.Argument(help="worklist-NNNN.json written by memwh submit.")
        ],
        task_id: Annotated[
            int, typer.Argument(help="Index into the work list (SLURM array task id).")
        ],
    ) -> None:
        """Score one task of a work list. Exit 75 = preempted (requeue me)."""
        from memwh.inference_jobs.sweep import run_task

        raise typer.Exit(run_task(worklist, task_id))

    app.add_typer(sweep_app, name="sweep")
