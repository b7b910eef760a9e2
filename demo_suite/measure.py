"""Quick memorization check of a built suite (for tuning and tests, not the scoring path).

Under greedy decoding the generated continuation equals the true one exactly when the
teacher-forced argmax is right at every continuation position, so one forward pass per
sequence gives the exact-match label (the real scorer lives in inference_jobs/).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from memwh.demo_suite.corpus import CORPUS_FILE, read_tokens
from memwh.demo_suite.manifest import read_manifest
from memwh.demo_suite.settings import EOS_ID


def exact_matches(
    model,
    tokens: np.ndarray,
    prompt_len: int = 32,
    cont_len: int = 32,
    batch_size: int = 256,
    suppress_eos: bool = True,
) -> np.ndarray:
    """Boolean per row: greedy `cont_len` tokens after `prompt_len` equal the truth."""
    import torch

    out = []
    with torch.inference_mode():
        for lo in range(0, len(tokens), batch_size):
            x = torch.from_numpy(tokens[lo : lo + batch_size, : prompt_len + cont_len]).long()
            logits = model(input_ids=x).logits[:, prompt_len - 1 : prompt_len + cont_len - 1]
            if suppress_eos:
                logits[..., EOS_ID] = -float("inf")
            pred = logits.argmax(-1)
            out.append((pred == x[:, prompt_len:]).all(-1).numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=bool)


def memorization_table(suite_dir: str | Path, n_background: int = 512) -> pl.DataFrame:
    """Exact matches per (model, revision, duplicates) over every distinct canary and a
    sample of background rows; one row per group with n_scored and n_memorized."""
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    suite_dir = Path(suite_dir)
    manifest = read_manifest(suite_dir)
    tokens, dups, canary = read_tokens(suite_dir / CORPUS_FILE)
    # one row per distinct canary (first occurrence) + a fixed background sample
    _, first = np.unique(tokens, axis=0, return_index=True)
    first = np.sort(first)
    pick = np.concatenate([first[canary[first]], np.flatnonzero(~canary)[:n_background]])
    frames = []
    for c in manifest["checkpoints"]:
        model = AutoModelForCausalLM.from_pretrained(suite_dir / c["path"]).eval()
        hit = exact_matches(model, tokens[pick])
        frames.append(
            pl.DataFrame(
                {
                    "model": c["model"],
                    "n_params": c["n_params"],
                    "step": c["step"],
                    "duplicates": np.where(canary[pick], dups[pick], 0),
                    "memorized": hit,
                }
            )
        )
    return (
        pl.concat(frames)
        .group_by("model", "n_params", "step", "duplicates")
        .agg(n_scored=pl.len(), n_memorized=pl.col("memorized").sum())
        .sort("n_params", "step", "duplicates")
    )


def pivot_table(table: pl.DataFrame) -> pl.DataFrame:
    """model x step rows, one column per duplication count (0 = background sample)."""
    wide = table.with_columns(pl.format("{}/{}", "n_memorized", "n_scored").alias("cell"))
    return wide.pivot(
        on="duplicates", index=["model", "n_params", "step"], values="cell", sort_columns=True
    ).sort("n_params", "step")


if __name__ == "__main__":  # python -m memwh.demo_suite.measure [SUITE_DIR]
    import sys

    from memwh.demo_suite.build import default_suite_dir

    pl.Config.set_tbl_rows(100)
    pl.Config.set_tbl_cols(30)
    print(
        pivot_table(memorization_table(sys.argv[1] if len(sys.argv) > 1 else default_suite_dir()))
    )
