"""`build_suite`: corpus + all models + manifest, built atomically and cached by settings hash."""

from __future__ import annotations

import os
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from memwh.core import config
from memwh.core.contract import sha256_file
from memwh.core.errors import MemwhError
from memwh.demo_suite.corpus import (
    CORPUS_FILE,
    EXPOSURE_FILE,
    STANDARD_EXPOSURE_FILE,
    build_corpus_and_fresh,
    exposure_table,
    read_tokens,
    standard_order,
    write_corpus,
)
from memwh.demo_suite.manifest import MANIFEST_JSON, checkpoint_row, is_complete, write_manifest
from memwh.demo_suite.models import model_name, param_counts
from memwh.demo_suite.settings import SUITE_FORMAT, SuiteSettings


def default_suite_dir() -> Path:
    return config.data_dir() / "demo-suite"


def _check_replaceable(out: Path) -> None:
    """Only an empty folder or an older suite may be replaced: never delete user files."""
    if out.exists():
        if not out.is_dir():
            raise MemwhError(f"{out}: exists and is not a folder; pick another --out")
        if any(out.iterdir()) and not (out / MANIFEST_JSON).is_file():
            raise MemwhError(
                f"{out}: folder is not empty and holds no {MANIFEST_JSON}; pick another --out or empty it"
            )


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Replace `out` by the freshly built `tmp` without ever exposing a half-built suite."""
    _check_replaceable(out)
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_suite(
    out: str | os.PathLike | None = None,
    *,
    seed: int = 0,
    progress: bool = True,
    threads: int | None = None,
    **overrides: Any,
) -> Path:
    """Build (or reuse) the demo suite and return its folder.

    Cached: when `out` already holds a complete suite built with the same settings (hash in
    suite_manifest.json, every checkpoint folder present) this returns at once. Otherwise
    everything is built in a sibling temp folder and moved into place at the end, so an
    interrupted build never leaves a suite that looks complete. `overrides` are
    `SuiteSettings` fields (e.g. sizes, n_background, ladder, batch_size) for small test suites.
    `threads` (torch intra-op threads) does not change the result, so it is not part of the
    cache key; default: all cores, or 1 when the machine is already busy (see _auto_threads).
    """
    settings = SuiteSettings.from_overrides(seed=seed, **overrides)
    out = Path(out) if out is not None else default_suite_dir()
    chash = settings.config_hash()
    console = Console(stderr=True, quiet=not progress)
    if is_complete(out, chash):
        console.print(f"demo suite up to date ({chash}): {out}")
        return out

    _check_replaceable(out)
    import torch

    from memwh.demo_suite.train import train_model

    t0 = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.building-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    prev_threads = torch.get_num_threads()
    n_threads = threads or _auto_threads()
    torch.set_num_threads(n_threads)
    try:
        table, fresh = build_corpus_and_fresh(settings)
        write_corpus(table, tmp / CORPUS_FILE)
        tokens, _, is_canary = read_tokens(tmp / CORPUS_FILE)
        rows: list[dict[str, Any]] = []
        n_steps = settings.n_steps
        # The suite knows its training order: it writes its own exposure (first_step per seq_idx).
        exposure = exposure_table(tokens, n_steps, settings.batch_size)
        write_corpus(exposure, tmp / EXPOSURE_FILE)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.3f}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as bar:
            n_runs = len(settings.sizes) + (settings.control_index is not None)
            task = bar.add_task("training", total=n_steps * n_runs, loss=float("nan"))
            for i, size in enumerate(settings.sizes):
                name = model_name(param_counts(size, settings.vocab_size)[0])
                bar.update(task, description=f"{name:>12}")
                infos = train_model(
                    i,
                    size,
                    tokens,
                    settings,
                    tmp,
                    on_step=lambda _s, loss: bar.update(task, advance=1, loss=loss),
                )
                for info in infos:
                    rows.append(
                        checkpoint_row(
                            model=info.model,
                            family=settings.family,
                            step=info.step,
                            n_params=info.n_params,
                            non_embedding_params=info.non_embedding_params,
                            sequences_per_step=settings.batch_size,
                            seq_len=settings.seq_len,
                            train_loss=info.train_loss,
                            path=info.path.relative_to(tmp).as_posix(),
                        )
                    )
            controls = (
                _train_controls(settings, tokens, is_canary, fresh, exposure, tmp, bar, task)
                if settings.control_index is not None
                else []
            )
        names = list(dict.fromkeys(r["model"] for r in rows))
        if len(names) != len(settings.sizes):
            raise MemwhError(
                "demo suite: two sizes got the same model name; make the sizes more distinct"
            )
        seconds = time.perf_counter() - t0
        manifest = {
            "suite_format": SUITE_FORMAT,
            "config_hash": chash,
            "family": settings.family,
            "settings": settings.to_json(),
            "corpus": {
                "path": CORPUS_FILE,
                "n_sequences": table.num_rows,
                "n_trained_sequences": n_steps * settings.batch_size,
                "n_held_out": settings.n_held_out,
                "seq_len": settings.seq_len,
                "n_canaries": settings.canaries_per_rung * len(settings.ladder),
                "sha256": sha256_file(tmp / CORPUS_FILE),
            },
            "exposure": {
                "path": EXPOSURE_FILE,
                "n_rows": exposure.num_rows,
                "n_never_trained": exposure.column("first_step").null_count,
                "columns": "seq_idx, first_step (0-based step, NULL = never trained), "
                "n_exposures, last_step",
            },
            "models": names,
            "checkpoints": rows,
            # controlled experiments: models outside the size ladder, scored in fast mode
            "controls": controls,
            "train_flops_uses": "n_params (total parameters)",
            "build_seconds": round(seconds, 1),
            "torch_threads": n_threads,
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "versions": {"torch": torch.__version__, "transformers": _transformers_version()},
        }
        write_manifest(tmp, manifest)
        _swap_into_place(tmp, out)
    finally:
        torch.set_num_threads(prev_threads)
        shutil.rmtree(tmp, ignore_errors=True)
    console.print(
        f"demo suite built: {len(names)} models x {len(settings.checkpoint_steps)} checkpoints, "
        f"{table.num_rows:,} sequences, {n_steps} steps, {seconds:.0f} s -> {out}"
    )
    return out


def _train_controls(
    settings: SuiteSettings,
    tokens,
    is_canary,
    fresh,
    exposure,
    tmp: Path,
    bar: Progress,
    task,
) -> list[dict[str, Any]]:
    """The standard model (final checkpoint only) and the edited model of one size; writes the
    standard model's exposure (the suite's, with every canary never trained)."""
    import pyarrow as pa

    from memwh.demo_suite.train import fine_tune, train_model

    i = settings.control_index
    size = settings.sizes[i]
    base = model_name(param_counts(size, settings.vocab_size)[0])
    n_steps = settings.n_steps
    std_name = f"{base}-standard"
    bar.update(task, description=f"{std_name:>12}")
    order = standard_order(tokens, is_canary, fresh)
    (info,) = train_model(
        i,
        size,
        order,
        settings,
        tmp,
        on_step=lambda _s, loss: bar.update(task, advance=1, loss=loss),
        name=std_name,
        checkpoint_steps=[n_steps],
    )
    never = pa.array(is_canary[: exposure.num_rows])
    std_exposure = pa.table(
        {
            c: pa.compute.if_else(
                never, pa.nulls(exposure.num_rows, exposure.column(c).type), exposure.column(c)
            )
            for c in ("first_step", "n_exposures", "last_step")
        }
    )
    std_exposure = (
        exposure.select(["seq_idx"])
        .append_column("first_step", std_exposure.column("first_step"))
        .append_column("n_exposures", std_exposure.column("n_exposures"))
        .append_column("last_step", std_exposure.column("last_step"))
    )
    write_corpus(std_exposure, tmp / STANDARD_EXPOSURE_FILE)
    common = {
        "family": settings.family,
        "step": n_steps,
        "n_params": info.n_params,
        "non_embedding_params": info.non_embedding_params,
        "sequences_per_step": settings.batch_size,
        "seq_len": settings.seq_len,
    }
    rows = [
        {
            **checkpoint_row(model=std_name, train_loss=info.train_loss,
                             path=info.path.relative_to(tmp).as_posix(), **common),
            "role": "standard",
            "exposure": STANDARD_EXPOSURE_FILE,
        }
    ]  # fmt: skip
    if settings.edit_steps:
        ft_name = f"{base}-finetuned"
        rows_ft = fresh[
            settings.n_canary_rows : settings.n_canary_rows
            + settings.edit_steps * settings.batch_size
        ]
        ft = fine_tune(
            tmp / base / f"step{n_steps}",
            rows_ft,
            settings,
            tmp / ft_name / "main",
            lr=settings.edit_lr,
            name=ft_name,
        )
        rows.append(
            {
                "model": ft_name,
                "family": settings.family,
                "revision": "main",
                "n_params": ft.n_params,
                "non_embedding_params": ft.non_embedding_params,
                "train_loss": None if ft.train_loss is None else round(ft.train_loss, 5),
                "path": ft.path.relative_to(tmp).as_posix(),
                "role": "edited",
                "variant_of": f"{base}@step{n_steps}",
                "method": "fine-tune",
                "method_params": {
                    "steps": settings.edit_steps,
                    "lr": settings.edit_lr,
                    "batch_size": settings.batch_size,
                    "data": "fresh background sequences (never scored)",
                },
                "exposure": EXPOSURE_FILE,
            }
        )
    return rows


def _auto_threads() -> int:
    """All cores on an idle machine; one thread when others already load it.

    Measured on the 2-core box: with the cores oversubscribed, 2 torch threads ran a training
    step 3x slower than 1 thread (OpenMP workers spin waiting for each other).
    """
    cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0] > cores
    except OSError:
        busy = False
    return 1 if busy else cores


def _transformers_version() -> str:
    import transformers

    return transformers.__version__
