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
        return int(a), int(b)
    except ValueError:
        raise MemwhError(
            f"--seq-range {text!r}: use START:END (END exclusive), e.g. 0:100000"
        ) from None


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
            None, "--name", help="Model label in the warehouse (default: folder / repo name)."
        ),
        prompt_len: str = typer.Option(
            "32",
            "--prompt-len",
            help="Prompt length(s): 32, a list 32,64,128 or start:stop:step 25:100:25 "
            "(one row per sequence and length; fast mode scores all in one pass).",
        ),
        cont_len: int = typer.Option(32, "--cont-len"),
        mode: str = typer.Option(
            "fast", "--mode", help="fast (one teacher-forced pass) or generate (greedy, KV cache)."
        ),
        suppress_eos: bool = typer.Option(
            False, "--suppress-eos", help="Never predict EOS (Pythia's min_length behaviour)."
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
            False, "--force", help="Redo a completed shard (and drop partial results)."
        ),
        save_generations: bool = typer.Option(
            False, "--save-generations", help="Store generated tokens (generate mode)."
        ),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar or summary."),
    ) -> None:
        """Score sequences for memorization; writes one Parquet shard + manifest. Exit 75 when preempted."""
        from memwh import inference_jobs

        res = inference_jobs.score(
            model, data, out, revision=revision, name=name, prompt_len=prompt_len,
            cont_len=cont_len, mode=mode, suppress_eos=suppress_eos, batch_size=batch_size,
            dtype=dtype, device=device, seq_range=_parse_range(seq_range), shard=shard,
            num_shards=num_shards, force=force, save_generations=save_generations,
            progress=not quiet,
        )  # fmt: skip
        if res.status == "preempted":
            raise typer.Exit(EXIT_PREEMPTED)
