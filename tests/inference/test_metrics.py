"""Per-token metrics against a direct computation from a full forward pass."""

from __future__ import annotations

import zlib

import helpers
import numpy as np
import torch

from memwh.inference_jobs.scoring import min_k_logprob, score_batch


def test_metrics_match_direct_computation(tiny_models):
    model = tiny_models["step1"]
    tok = helpers.make_tokenizer()
    seqs = helpers.build_sequences(model, 9, seed=4, prompt_len=10, cont_len=10)
    s = score_batch(model, seqs, 10, 10, mode="fast", tokenizer=tok)
    with torch.no_grad():
        logits = model(torch.as_tensor(seqs), use_cache=False).logits[:, 9:19].double()
    lp = torch.log_softmax(logits, -1).numpy()
    truth = seqs[:, 10:20]
    tok_lp = np.take_along_axis(lp, truth[..., None], -1)[..., 0]
    np.testing.assert_allclose(s.loss, -tok_lp.mean(1), rtol=1e-5)
    k = 2  # int(0.2 * 10)
    np.testing.assert_allclose(s.min_k_logprob, np.sort(tok_lp, 1)[:, :k].mean(1), rtol=1e-5)
    np.testing.assert_array_equal(
        s.tf_token_accuracy, (lp.argmax(-1) == truth).mean(1).astype(np.float32)
    )
    zl = np.array([len(zlib.compress(tok.decode(r.tolist()).encode())) for r in truth])
    np.testing.assert_allclose(s.zlib_ratio, s.loss / zl, rtol=1e-6)
    assert score_batch(model, seqs, 10, 10, mode="fast").zlib_ratio is None


def test_min_k_uses_at_least_one_token():
    x = torch.tensor([[-1.0, -5.0, -2.0]])
    assert min_k_logprob(x).item() == -5.0  # int(0.2 * 3) = 0 -> 1 token
    y = torch.arange(-10.0, 0.0).reshape(1, 10)
    assert min_k_logprob(y).item() == -9.5
