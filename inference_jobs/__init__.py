"""Memorization scoring of causal LMs: one-pass fast mode, KV-cache generate mode, sharded Parquet.

`import inference_jobs` stays light: torch/transformers load on first use of `score`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .metadata import ModelMeta

if TYPE_CHECKING:
    from .runner import ShardResult, score

__all__ = ["ModelMeta", "ShardResult", "score"]


def __getattr__(name: str) -> Any:
    if name in ("ShardResult", "score"):
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'inference_jobs' has no attribute {name!r}")
