"""`memwh infer`: score one shard of a dataset with a causal LM (thin layer over inference_jobs.score)."""

from __future__ import annotations

from pathlib import Path

import typer

from memwh.core.errors import MemwhError

EXIT_PREEMPTED = 75  # EX_TEMPFAIL: "requeue me" for SLURM wrappers


def _parse_range(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        a, b = text.split(":")
        start, end = int(a), int(b)
    except ValueError:
        raise MemwhError(
            f"--seq-range {text!r}: use START:END (END exclusive), e.g. 0:100000"
        ) from None
    if not 0 <= start < end:
        raise MemwhError(
            f"--seq-range {text}: START must be >= 0 and smaller than END (END exclusive), "
            "e.g. 0:100000"
        )
    return start, end


def register(app: typer.Typer) -> None:
    @app.command("infer")
    def infer(
        model: str = typer.Option(
            ...,
            "--model",
            help="Local model folder (optionally with stepN/ subfolders) or HF hub id.",
        ),
        data: str = typer.Option(
            ...,
            "--data",
            help="Token Parquet (seq_idx, tokens), Megatron .bin/.idx, Pythia memmap, or an HF datasets source with a text column.",
        ),
        out: Path = typer.Option(
            ..., "--out", help="Output root (ROOT/scores/model=.../revision=.../part-*.parquet)."
        ),
        revision: str | None = typer.Option(
            None,
            "--revision",
            help="Checkpoint, e.g. step143000 (hub revision or local subfolder).",
        ),
        name: str | None = typer.Option(
            None,
            "--name",
            help="Model label in the warehouse (default: the model folder's name; for a hub id "
            "org--name, e.g. EleutherAI--pythia-160m).",
        ),
        prompt_len: str = typer.Option(
            "32",
            "--prompt-len",
            help="Prompt length(s): 32, a list 32,64,128 or start:stop:step 25:100:25 "
            "(one row per sequence and length; fast mode scores all in one pass).",
        ),
        cont_len: int = typer.Option(32, "--cont-len"),
        offset: int = typer.Option(
            0,
            "--offset",
            help="First token of the scored window in each row (rows too short for "
            "offset + prompt + continuation are skipped and counted in the manifest).",
        ),
        mode: str = typer.Option(
            "fast", "--mode", help="fast (one teacher-forced pass) or generate (greedy, KV cache)."
        ),
        suppress_eos: bool = typer.Option(
            False,
            "--suppress-eos/--no-suppress-eos",
            help="Never predict EOS (Pythia's min_length behaviour).",
        ),
        batch_size: int | None = typer.Option(
            None, "--batch-size", help="Default: auto from device memory."
        ),
        dtype: str = typer.Option(
            "auto", "--dtype", help="auto (bf16 on GPU, fp32 on CPU), fp32, bf16, fp16."
        ),
        device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1, ..."),
        seq_range: str | None = typer.Option(
            None, "--seq-range", help="START:END of sequence indices (END exclusive)."
        ),
        shard: int = typer.Option(
            0, "--shard", help="Shard index I (0-based); e.g. $SLURM_ARRAY_TASK_ID."
        ),
        num_shards: int = typer.Option(1, "--num-shards", help="Number of contiguous shards N."),
        force: bool = typer.Option(
            False,
            "--force/--no-force",
            help="Redo a completed shard, also one made with other settings (and drop partial results).",
        ),
        save_generations: bool = typer.Option(
            False,
            "--save-generations/--no-save-generations",
            help="Store generated tokens (generate mode).",
        ),
        save_windows: bool = typer.Option(
            True,
            "--save-windows/--no-save-windows",
            help="Write the scored token windows (prompt + continuation) once per dataset range "
            "under OUT/sequences/, so `memwh show` can print the text.",
        ),
        windows_per_row: int = typer.Option(
            1,
            "--windows-per-row",
            help="Score W consecutive windows of each row (long documents): window w of row r "
            "is sequence r*W+w; rows too short for a window skip that window.",
        ),
        keep_columns: str = typer.Option(
            "",
            "--keep-columns",
            help="Columns of the data to keep as per-sequence metadata (comma-separated, e.g. "
            "source,url); stored as JSON in raw.sequences.extra.",
        ),
        verify: bool = typer.Option(
            False,
            "--verify/--no-verify",
            help="Check in fp32 the labels that are not certain under --dtype (top-1/top-2 "
            "logit gap within rounding error) and keep fp32's; rows whose label changes are "
            "re-scored in fp32.",
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
        role: str | None = typer.Option(
            None,
            "--role",
            help="Controlled experiments: standard, perturbed, reference, edited or shadow.",
        ),
        variant_of: str | None = typer.Option(
            None, "--variant-of", help="Base unit MODEL@REVISION this model was derived from."
        ),
        method: str | None = typer.Option(
            None, "--method", help="How the variant was made (e.g. fine-tune, unlearn)."
        ),
        method_params: str | None = typer.Option(
            None, "--method-params", help="JSON object of its parameters, e.g. '{\"lr\": 1e-4}'."
        ),
        family: str | None = typer.Option(
            None,
            "--family",
            help="Model family for cross-scale comparisons (e.g. gpt2 for gpt2 and gpt2-large); "
            "default: the suite's, else the warehouse guesses from the label.",
        ),
        n_params: int | None = typer.Option(
            None, "--n-params", help="Parameter count to record (default: counted from the model)."
        ),
        tokens_per_step: int | None = typer.Option(
            None, "--tokens-per-step", help="Training tokens per optimizer step (for 6ND compute)."
        ),
        sequences_per_step: int | None = typer.Option(
            None,
            "--sequences-per-step",
            help="Training sequences per step: step N has seen seq_idx < N x this.",
        ),
        step: int | None = typer.Option(
            None, "--step", help="Training step of a revision not named stepN (e.g. main)."
        ),
    ) -> None:
        """Score sequences for memorization; writes one Parquet shard + manifest. Exit 75 when preempted."""
        from memwh import inference_jobs

        meta = inference_jobs.ModelMeta(
            family=family, n_params=n_params, tokens_per_step=tokens_per_step,
            sequences_per_step=sequences_per_step, step=step,
        )  # fmt: skip

        res = inference_jobs.score(
            model, data, out, revision=revision, name=name, prompt_len=prompt_len,
            cont_len=cont_len, mode=mode, suppress_eos=suppress_eos, batch_size=batch_size,
            dtype=dtype, device=device, seq_range=_parse_range(seq_range), shard=shard,
            num_shards=num_shards, force=force, save_generations=save_generations,
            save_windows=save_windows,
            progress=not quiet, meta=meta, role=role, variant_of=variant_of, method=method,
            method_params=method_params, verify=verify, offset=offset, keep_columns=keep_columns,
            windows_per_row=windows_per_row,
        )  # fmt: skip
        if res.status == "preempted":
            raise typer.Exit(EXIT_PREEMPTED)
