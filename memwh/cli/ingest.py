"""`memwh ingest ROOT` and `memwh import pythia-csv | memorized-index | pythia-analysis |
exposure | exposure-rule | sequence-meta | role`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from memwh.cli.options import DbOpt

ModelOpt = Annotated[str, typer.Option("--model", help="Model label used in the warehouse")]
RevisionOpt = Annotated[str, typer.Option("--revision", help="Checkpoint label, e.g. step143000")]
FamilyOpt = Annotated[
    str | None, typer.Option("--family", help="Model family for cross-scale comparisons")
]
ParamsOpt = Annotated[
    int | None, typer.Option("--n-params", help="Parameter count (enables train_flops)")
]
PromptOpt = Annotated[int, typer.Option("--prompt-len", help="Prompt tokens used by the tool")]
DatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--dataset",
        help="Key of the scored dataset (stored as data_fingerprint; exposure is matched on it)",
    ),
]
ExposureDatasetOpt = Annotated[
    str | None,
    typer.Option(
        "--dataset",
        help="data_fingerprint of the data whose seq_idx the exposure indexes "
        "(default: the one dataset the model's units scored)",
    ),
]


def _print_import(result) -> None:
    from rich.console import Console
    from rich.markup import escape

    err = Console(stderr=True)
    for note in result.notes:
        err.print(f"[yellow]note:[/] {escape(note)}", highlight=False, soft_wrap=True)
    err.print(result.summary(), markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    def ingest_cmd(
        root: Annotated[Path, typer.Argument(help="Output root of `memwh infer` (holds scores/)")],
        db: DbOpt = None,
        strict: Annotated[
            bool,
            typer.Option(
                "--strict/--no-strict", help="Load nothing if any file is bad or incomplete"
            ),
        ] = False,
        prune: Annotated[
            bool,
            typer.Option(
                "--prune/--no-prune", help="Drop rows of ingested shards deleted from ROOT"
            ),
        ] = False,
        no_checksums: Annotated[
            bool,
            typer.Option("--no-checksums", help="Skip sha256 verification of new files (faster)"),
        ] = False,
        threads: Annotated[int | None, typer.Option("--threads", help="DuckDB threads")] = None,
        memory_limit: Annotated[
            str | None, typer.Option("--memory-limit", help="DuckDB memory limit, e.g. 8GB")
        ] = None,
        windows: Annotated[
            str,
            typer.Option(
                "--windows",
                help="Token windows to load from ROOT/sequences: all, memorized (only those "
                "some unit matched exactly; far smaller at Pythia scale) or none",
            ),
        ] = "all",
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars")] = False,
    ) -> None:
        """Load completed, valid shards under ROOT into the raw tables (idempotent, incremental).

        Exit code 1 when some file was bad (the good ones are loaded), 2 on --strict failure.
        """
        from rich.console import Console
        from rich.markup import escape

        from memwh.ingest import IngestError, ingest_root

        err = Console(stderr=True)
        styles = {"bad": "red", "incomplete": "yellow", "gone": "yellow"}

        def show(problems) -> None:
            for p in problems:
                err.print(
                    f"[{styles[p.kind]}]{p.kind}:[/] {escape(p.line())}",
                    highlight=False,
                    soft_wrap=True,
                )

        try:
            report = ingest_root(
                root,
                db,
                strict=strict,
                progress=not quiet,
                prune=prune,
                verify_checksums=not no_checksums,
                threads=threads,
                memory_limit=memory_limit,
                console=err,
                windows=windows,
            )
        except IngestError as e:
            show(e.report.problems)
            raise
        show(report.problems)
        err.print(report.summary(), markup=False, highlight=False, soft_wrap=True)
        if not report.ok:
            raise typer.Exit(1)

    imp = typer.Typer(
        help="Load results made by other tools into the same raw tables.", no_args_is_help=True
    )
    app.add_typer(imp, name="import")

    @imp.command("pythia-csv")
    def pythia_csv_cmd(
        directory: Annotated[Path, typer.Argument(help="Folder of per-rank `idx,score` CSVs")],
        model: ModelOpt,
        revision: RevisionOpt,
        db: DbOpt = None,
        family: FamilyOpt = None,
        n_params: ParamsOpt = None,
        prompt_len: PromptOpt = 32,
        cont_len: Annotated[int, typer.Option("--cont-len", help="Continuation tokens")] = 32,
        dataset: DatasetOpt = None,
    ) -> None:
        """Pythia eval CSVs (one file per rank, ranks may overlap) -> one unit."""
        from memwh.ingest import import_pythia_csv

        _print_import(
            import_pythia_csv(
                directory,
                model=model,
                revision=revision,
                db=db,
                prompt_len=prompt_len,
                cont_len=cont_len,
                family=family,
                n_params=n_params,
                dataset=dataset,
            )
        )

    @imp.command("memorized-index")
    def memorized_index_cmd(
        file: Annotated[Path, typer.Argument(help="Parquet/CSV/TXT list of memorized indices")],
        model: ModelOpt,
        revision: RevisionOpt,
        population: Annotated[
            int, typer.Option("--population", help="Number of sequences that were scored")
        ],
        seq_start: Annotated[
            int, typer.Option("--seq-start", help="First seq_idx of the scored population")
        ] = 0,
        db: DbOpt = None,
        family: FamilyOpt = None,
        n_params: ParamsOpt = None,
        prompt_len: PromptOpt = 32,
        cont_len: Annotated[int, typer.Option("--cont-len", help="Continuation tokens")] = 32,
        dataset: DatasetOpt = None,
    ) -> None:
        """Memorized indices out of a stated population -> one sparse unit."""
        from memwh.ingest import import_memorized_index

        _print_import(
            import_memorized_index(
                file,
                model=model,
                revision=revision,
                population=population,
                db=db,
                seq_start=seq_start,
                prompt_len=prompt_len,
                cont_len=cont_len,
                family=family,
                n_params=n_params,
                dataset=dataset,
            )
        )

    @imp.command("pythia-analysis")
    def pythia_analysis_cmd(
        file: Annotated[Path, typer.Argument(help="EleutherAI/pythia PR #161 analysis Parquet")],
        model: ModelOpt,
        db: DbOpt = None,
        family: Annotated[str | None, typer.Option("--family", help="Model family")] = "pythia",
        n_params: ParamsOpt = None,
        prompt_len: PromptOpt = 32,
        cont_len: Annotated[
            int, typer.Option("--cont-len", help="Length of the scored continuation")
        ] = 256,
        raw_longest_match: Annotated[
            bool,
            typer.Option(
                "--raw-longest-match",
                help="Keep longest_match=0 on fully matched rows (the source's argmax quirk)",
            ),
        ] = False,
        dataset: Annotated[
            str,
            typer.Option(
                "--dataset",
                help="Key of the pre-shuffled order the indices refer to (the exposure rule "
                "first_step = index div 1024 is declared for it unless one exists)",
            ),
        ] = "pythia-pile-preshuffled",
    ) -> None:
        """PR #161 per-checkpoint measurements -> one unit per checkpoint (step<N>)."""
        from memwh.ingest import import_pythia_analysis

        _print_import(
            import_pythia_analysis(
                file,
                model=model,
                db=db,
                family=family,
                n_params=n_params,
                prompt_len=prompt_len,
                cont_len=cont_len,
                fix_full_match=not raw_longest_match,
                dataset=dataset,
            )
        )

    @imp.command("exposure")
    def exposure_cmd(
        file: Annotated[
            Path,
            typer.Argument(help="Parquet or CSV: seq_idx, first_step[, n_exposures, last_step]"),
        ],
        model: ModelOpt,
        dataset: ExposureDatasetOpt = None,
        db: DbOpt = None,
    ) -> None:
        """What MODEL trained on: first_step per sequence (empty = never trained). Replaces
        an earlier exposure of the same model and dataset."""
        from memwh.ingest import import_exposure

        _print_import(import_exposure(file, model=model, dataset=dataset, db=db))

    @imp.command("exposure-rule")
    def exposure_rule_cmd(
        model: ModelOpt,
        sequences_per_step: Annotated[
            int, typer.Option("--sequences-per-step", help="Training sequences per step")
        ] = 1024,
        train_steps: Annotated[
            int | None,
            typer.Option("--train-steps", help="Steps trained (later indices were never trained)"),
        ] = None,
        dataset: ExposureDatasetOpt = None,
        db: DbOpt = None,
    ) -> None:
        """Declare the dataset as MODEL's training order: first_step = seq_idx div
        sequences_per_step (Pythia's pre-shuffled Pile: 1024, 143000 steps)."""
        from memwh.ingest import declare_exposure_rule

        _print_import(
            declare_exposure_rule(
                model=model,
                sequences_per_step=sequences_per_step,
                train_steps=train_steps,
                dataset=dataset,
                db=db,
            )
        )

    @imp.command("sequence-meta")
    def sequence_meta_cmd(
        file: Annotated[
            Path,
            typer.Argument(
                help="Parquet or CSV: seq_idx + any of duplicates, is_canary, category, "
                "insert_first_step, insert_last_step"
            ),
        ],
        dataset: Annotated[
            str,
            typer.Option(
                "--dataset",
                help="data_fingerprint of the scored data whose seq_idx the file indexes",
            ),
        ],
        db: DbOpt = None,
    ) -> None:
        """Per-sequence metadata (category, insertion window, copies) of a scored dataset;
        the file's columns override the stored ones for its sequences, the rest is kept."""
        from memwh.ingest import import_sequence_meta

        _print_import(import_sequence_meta(file, dataset=dataset, db=db))

    @imp.command("role")
    def role_cmd(
        model: ModelOpt,
        role: Annotated[
            str, typer.Option("--role", help="standard, perturbed, reference, edited or shadow")
        ],
        revision: Annotated[
            str | None,
            typer.Option("--revision", help="Unit to declare (default: every stored revision)"),
        ] = None,
        variant_of: Annotated[
            str | None, typer.Option("--variant-of", help="Base unit MODEL@REVISION")
        ] = None,
        method: Annotated[
            str | None, typer.Option("--method", help="How the variant was made, e.g. fine-tune")
        ] = None,
        method_params: Annotated[
            str | None, typer.Option("--method-params", help="JSON object of its parameters")
        ] = None,
        db: DbOpt = None,
    ) -> None:
        """Declare a unit's role in a controlled experiment after the fact (wins over its
        manifests); the base of --variant-of must be stored, and no cycle is allowed."""
        from memwh.ingest import declare_role

        _print_import(
            declare_role(
                model=model,
                revision=revision,
                role=role,
                variant_of=variant_of,
                method=method,
                method_params=method_params,
                db=db,
            )
        )
