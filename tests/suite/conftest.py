"""Fixtures for the demo-suite tests: a tiny suite (seconds) and the real default suite
(built once per machine into pytest's cache dir, then reused via build_suite's cache)."""

from __future__ import annotations

from pathlib import Path

import pytest

# Small enough to train in a few seconds, big enough to exercise every code path.
TINY = {
    "n_background": 192,
    "canaries_per_rung": 4,
    "shared_prefix_lens": (4, 20),
    "ladder": (1, 2, 4, 8),
    "sizes": [(16, 1, 2, 1e-2), (32, 2, 2, 1e-2)],
    "batch_size": 16,
    "n_checkpoints": 4,
    "n_held_out": 48,
}


@pytest.fixture(scope="session")
def tiny_overrides() -> dict:
    return dict(TINY)


@pytest.fixture(scope="session")
def tiny_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from memwh.demo_suite import build_suite

    return build_suite(tmp_path_factory.mktemp("tiny") / "suite", seed=3, progress=False, **TINY)


@pytest.fixture(scope="session")
def default_suite(demo_suite_dir: Path) -> Path:
    """The real demo suite, shared with the pipeline tests (tests/conftest.py)."""
    return demo_suite_dir
