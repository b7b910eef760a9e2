"""memwh's own calls of deprecated library APIs fail the tests (tests/conftest.py)."""

from __future__ import annotations

import warnings

import pytest
import torch

from memwh.inference_jobs.scoring import greedy_generate


def _as_memwh(code: str, **names):
    """Run `code` as if it were a line of a memwh module."""
    exec(compile(code, "memwh_fake.py", "exec"), {"__name__": "memwh.fake", **names})


def _tiny():
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    cfg = GPTNeoXConfig(vocab_size=32, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64)  # fmt: skip
    return GPTNeoXForCausalLM(cfg).eval()


def test_memwh_calling_a_deprecated_kwarg_is_an_error():
    model, x = _tiny(), torch.ones((1, 4), dtype=torch.long)
    # conftest.MemwhDeprecationError (an AssertionError; conftest modules are not importable
    # by name when several folders have one)
    with pytest.raises(AssertionError, match=r"memwh calls a deprecated API: .*past_key_values"):
        _as_memwh("model(input_ids=x, past_key_values=None)", model=model, x=x)
    with pytest.raises(AssertionError, match="memwh calls a deprecated API: old"):
        _as_memwh("warnings.warn('old', DeprecationWarning)", warnings=warnings)


def test_the_same_call_from_a_test_or_other_warnings_pass():
    model, x = _tiny(), torch.ones((1, 4), dtype=torch.long)
    with pytest.warns(FutureWarning, match="past_key_values"):
        model(input_ids=x, past_key_values=None)
    with pytest.warns(UserWarning):
        _as_memwh("warnings.warn('not a deprecation')", warnings=warnings)


def test_the_kv_cache_decode_uses_no_deprecated_call():
    gen, _, _ = greedy_generate(_tiny(), torch.ones((2, 4), dtype=torch.long), 3, [])
    assert gen.shape == (2, 3)
