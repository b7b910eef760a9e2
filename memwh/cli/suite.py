"""`memwh suite build|show`: the embedded demo suite (corpus + tiny GPT-NeoX models)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table


def _print_manifest(suite_dir: Path) -> None:
    from memwh.demo_suite.manifest import read_manifest

    manifest = read_manifest(suite_dir)
    corpus = manifest.get("corpus", {})
    table = Table(
        title=f"demo suite {suite_dir}\nconfig {manifest.get('config_hash')}, "
        f"{corpus.get('n_sequences', 0):,} sequences ({corpus.get('n_held_out', 0):,} held out), built in {manifest.get('build_seconds', '?')} s",
        title_justify="left",
    )
    cols = {
        "model": "model",
        "revision": "revision",
        "n_params": "params",
        "non_embedding_params": "non-emb",
        "tokens_seen": "tokens",
        "train_flops": "FLOPs",
        "train_loss": "loss",
    }
    for c, header in cols.items():
        table.add_column(
            header, justify="left" if c in ("model", "revision") else "right", no_wrap=True
        )
    for row in manifest["checkpoints"]:
        cells = []
        for c in cols:
            v = row.get(c)
            if c == "train_flops":
                cells.append(f"{v:.2e}")
            elif c == "train_loss":
                cells.append("-" if v is None else f"{v:.3f}")  # None: step0 (initial weights)
            elif isinstance(v, int):
                cells.append(f"{v:,}")
            else:
                cells.append(str(v))
        table.add_row(*cells)
    Console().print(table)


def register(app: typer.Typer) -> None:
    suite = typer.Typer(
        help="Build and inspect the embedded demo model suite.", no_args_is_help=True
    )

    @suite.command("build")
    def build(
        out: Path | None = typer.Option(
            None, "--out", help="Suite folder (default: $MEMWH_HOME/demo-suite)."
        ),
        seed: int = typer.Option(
            0, "--seed", help="Seed of corpus, data order and initialisation."
        ),
        threads: int | None = typer.Option(
            None, "--threads", help="Torch threads (default: all cores, 1 if the machine is busy)."
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ) -> None:
        """Train the demo suite (cached: same settings -> returns at once) and print its manifest."""
        from memwh.demo_suite import build_suite

        path = build_suite(out, seed=seed, progress=not quiet, threads=threads)
        _print_manifest(path)

    @suite.command("show")
    def show(
        out: Path | None = typer.Option(
            None, "--out", help="Suite folder (default: $MEMWH_HOME/demo-suite)."
        ),
    ) -> None:
        """Print the manifest of an already built suite."""
        from memwh.demo_suite.build import default_suite_dir

        _print_manifest(out or default_suite_dir())

    app.add_typer(suite, name="suite")
