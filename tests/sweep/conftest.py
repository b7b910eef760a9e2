"""Fixtures for sweep tests: a real single-node SLURM, tiny GPT-NeoX checkpoints, token data.

The `slurm_cluster` fixture runs scripts/start_slurm.sh itself (installs the Debian
packages when missing, starts munge/slurmctld/slurmd). If SLURM cannot be started the
tests that need it FAIL with the script's output: CI must show why, never skip silently.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
START_SLURM = PROJECT / "scripts" / "start_slurm.sh"

N_SEQ = 2048
SEQ_LEN = 64
VOCAB = 96


@pytest.fixture(scope="session")
def slurm_cluster() -> str:
    """Start (or reuse) the local SLURM; returns the script's summary line."""
    if not START_SLURM.is_file():
        pytest.fail(f"{START_SLURM} is missing")
    try:
        proc = subprocess.run(
            ["bash", str(START_SLURM)], capture_output=True, text=True, timeout=600
        )
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"scripts/start_slurm.sh timed out after {e.timeout}s: {e.stdout} {e.stderr}")
    if proc.returncode != 0:
        pytest.fail(
            f"scripts/start_slurm.sh failed (exit {proc.returncode}); SLURM tests cannot run:\n"
            f"{proc.stdout}\n{proc.stderr}"
        )
    for tool in ("sbatch", "squeue", "scancel", "scontrol"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not on PATH after scripts/start_slurm.sh")
    return proc.stdout.strip()


def _save_tiny_gptneox(path: Path, seed: int, hidden: int) -> None:
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(seed)
    cfg = GPTNeoXConfig(
        vocab_size=VOCAB,
        hidden_size=hidden,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=128,
        eos_token_id=0,
        bos_token_id=0,
    )
    GPTNeoXForCausalLM(cfg).eval().save_pretrained(path)


@pytest.fixture(scope="session")
def tiny_suite(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two random-initialised GPT-NeoX "models", each with step1/ and step2/ checkpoints,
    plus a token Parquet (seq_idx, tokens) of N_SEQ sequences of SEQ_LEN tokens."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path_factory.mktemp("sweep-suite")
    models: dict[str, Path] = {}
    for i, (label, hidden) in enumerate((("tiny-a", 16), ("tiny-b", 32))):
        for j, step in enumerate(("step1", "step2")):
            _save_tiny_gptneox(root / label / step, seed=10 * i + j, hidden=hidden)
        models[label] = root / label
    rng = np.random.default_rng(0)
    # Low-entropy tokens (a few repeated motifs) so some continuations are predictable.
    motifs = rng.integers(1, VOCAB, size=(16, SEQ_LEN), dtype=np.int32)
    toks = motifs[rng.integers(0, 16, size=N_SEQ)]
    noise = rng.random(toks.shape) < 0.3
    toks = np.where(noise, rng.integers(1, VOCAB, size=toks.shape, dtype=np.int32), toks)
    table = pa.table(
        {
            "seq_idx": pa.array(np.arange(N_SEQ, dtype=np.int64)),
            "tokens": pa.array(list(toks), type=pa.list_(pa.int32())),
        }
    )
    data = root / "tokens.parquet"
    pq.write_table(table, data)
    return {"root": root, "data": data, **models}
