"""Train the suite: every model sees the same batches in the same order (one pass).

Step s (1-based) trains on rows seq_idx in [(s-1)*B, s*B), so checkpoint stepN has seen
exactly seq_idx < N*B -- the property Pythia's checkpoint analyses rely on. `step0` (with
save_initial) holds the initial weights, before any update.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memwh.demo_suite.models import make_tokenizer, model_name, neox_config, param_counts
from memwh.demo_suite.settings import ModelSize, SuiteSettings


@dataclass
class CheckpointInfo:
    model: str
    step: int
    n_params: int
    non_embedding_params: int
    train_loss: float | None  # mean training loss since the previous checkpoint (None: step0)
    path: Path


def lr_factor(step: int, n_steps: int, warmup_frac: float, min_frac: float) -> float:
    """Linear warmup then cosine decay to `min_frac` of the peak (Pythia's schedule shape)."""
    warm = max(1, round(warmup_frac * n_steps))
    if step < warm:
        return (step + 1) / warm
    progress = (step - warm) / max(1, n_steps - warm)
    return min_frac + (1 - min_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train_model(
    index: int,
    size: ModelSize,
    tokens: np.ndarray,
    settings: SuiteSettings,
    suite_dir: Path,
    on_step: Callable[[int, float], None] | None = None,
    *,
    name: str | None = None,
    checkpoint_steps: list[int] | None = None,
) -> list[CheckpointInfo]:
    """Train one size on `tokens` (rows in training order); save each checkpoint step
    (`checkpoint_steps`, default the suite's) under `name` (default from the size).
    The initial weights depend only on the seed and `index`, so a standard model trained
    with the same index starts from the perturbed model's initial weights."""
    import torch
    from transformers import GPTNeoXForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own rich bar is the only progress display

    torch.manual_seed(settings.seed * 1009 + index)
    model = GPTNeoXForCausalLM(neox_config(size, settings))
    total, non_emb = param_counts(size, settings.vocab_size)
    actual = sum(p.numel() for p in model.parameters())
    if actual != total:  # the manifest must describe the real module
        raise RuntimeError(f"parameter formula {total} != model {actual}; update param_counts")
    name = name or model_name(total)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed_in" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embed_in" not in n)]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": settings.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=size.lr,
        betas=(0.9, 0.95),
        eps=1e-8,
    )
    n_steps, B = settings.n_steps, settings.batch_size
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, n_steps, settings.warmup_frac, settings.min_lr_frac)
    )
    data = torch.from_numpy(tokens[: n_steps * B]).long()
    ckpt_steps = set(settings.checkpoint_steps if checkpoint_steps is None else checkpoint_steps)
    tokenizer = make_tokenizer(settings.vocab_size)
    infos: list[CheckpointInfo] = []
    losses: list[float] = []

    def save(step: int) -> None:
        path = suite_dir / name / f"step{step}"
        model.eval()
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
        model.train()
        loss = float(np.mean(losses)) if losses else None
        infos.append(CheckpointInfo(name, step, total, non_emb, loss, path))
        losses.clear()

    if 0 in ckpt_steps:
        save(0)
    model.train()
    for step in range(1, n_steps + 1):
        batch = data[(step - 1) * B : step * B]
        with torch.enable_grad():  # independent of the caller's autograd mode
            loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        if on_step:
            on_step(step, losses[-1])
        if step in ckpt_steps:
            save(step)
    return infos


def fine_tune(
    base_path: Path,
    rows: np.ndarray,
    settings: SuiteSettings,
    out_path: Path,
    *,
    lr: float,
    name: str,
) -> CheckpointInfo:
    """A mitigation that trains in seconds (TinyMem's fine-tuning family): continue training
    the checkpoint at `base_path` on `rows` (fresh background text, never canaries), batch
    size as in training, constant learning rate `lr`, one pass; save to `out_path`."""
    import torch
    from transformers import GPTNeoXForCausalLM

    torch.manual_seed(settings.seed * 1009 + 7919)
    model = GPTNeoXForCausalLM.from_pretrained(base_path)
    model.train()
    opt = torch.optim.AdamW(
        model.parameters(), lr=lr, betas=(0.9, 0.95), eps=1e-8, weight_decay=settings.weight_decay
    )
    B = settings.batch_size
    data = torch.from_numpy(rows).long()
    losses = []
    for step in range(len(rows) // B):
        batch = data[step * B : (step + 1) * B]
        with torch.enable_grad():
            loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    model.eval()
    model.save_pretrained(out_path)
    make_tokenizer(settings.vocab_size).save_pretrained(out_path)
    total, non_emb = param_counts_of(model)
    return CheckpointInfo(
        name, -1, total, non_emb, float(np.mean(losses)) if losses else None, out_path
    )


def param_counts_of(model) -> tuple[int, int]:
    """(total, non-embedding) parameters of a GPT-NeoX module."""
    total = sum(p.numel() for p in model.parameters())
    emb = model.get_input_embeddings().weight.numel() + model.get_output_embeddings().weight.numel()
    return total, total - emb
