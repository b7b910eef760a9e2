"""Fixtures for the inference tests: a tiny two-checkpoint random GPT-NeoX "suite" and token data
built from its own greedy continuations (so exact matches occur). Everything fp32, CPU, local."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))

import helpers

# Tiny models gain nothing from threads, and a busy 2-core CI box loses a lot to spinning.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """<suite>/tiny-50k/{step1,step2}/ + suite_manifest.json; returns the model folder."""
    return helpers.save_suite(tmp_path_factory.mktemp("suite"), {"step1": 11, "step2": 22})


@pytest.fixture(scope="session")
def tiny_models(tiny_suite: Path) -> dict:
    from transformers import AutoModelForCausalLM

    return {
        rev: AutoModelForCausalLM.from_pretrained(tiny_suite / rev).eval()
        for rev in ("step1", "step2")
    }


@pytest.fixture(scope="session")
def token_table(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict) -> Path:
    """60 sequences (seq_idx 100..159) of 64+8 tokens; 20 are step2's greedy continuation."""
    seqs = helpers.build_sequences(tiny_models["step2"], 60, seed=5)
    return helpers.write_token_table(
        tmp_path_factory.mktemp("data") / "tokens.parquet", seqs, start=100, extra_len=8
    )
