"""Builders shared by the inference tests: tiny random GPT-NeoX checkpoints, a word-level
tokenizer, token tables whose sequences include the model's own greedy continuations (so that
exact matches really occur), and a writer of the GPT-NeoX MMIDIDX format."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

EOS = 0
VOCAB = 256
MMIDIDX_CODES = {np.uint8: 1, np.int8: 2, np.int16: 3, np.int32: 4, np.int64: 5, np.uint16: 8}


def make_tokenizer(vocab: int = VOCAB):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    v = {"<|endoftext|>": 0, "<|padding|>": 1, "<unk>": 2}
    v.update({f"t{i}": i for i in range(3, vocab)})
    tok = Tokenizer(models.WordLevel(vocab=v, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|padding|>", unk_token="<unk>"
    )


def make_model(seed: int, vocab: int = VOCAB, hidden: int = 64, layers: int = 2, heads: int = 4):
    """Random-init GPT-NeoX in fp32. A wide init keeps logits well separated (no near-ties)."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    cfg = GPTNeoXConfig(
        vocab_size=vocab, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=4 * hidden, max_position_embeddings=256, rotary_pct=0.25,
        tie_word_embeddings=False, bos_token_id=EOS, eos_token_id=EOS, pad_token_id=1,
        initializer_range=0.1,
    )  # fmt: skip
    torch.manual_seed(seed)
    return GPTNeoXForCausalLM(cfg).eval()


def save_suite(root: Path, seeds: dict[str, int], name: str = "tiny-50k") -> Path:
    """<root>/<name>/<rev>/ checkpoints + <root>/suite_manifest.json (like the demo suite)."""
    tok = make_tokenizer()
    entries = []
    for i, (rev, seed) in enumerate(seeds.items()):
        m = make_model(seed)
        d = root / name / rev
        m.save_pretrained(d)
        tok.save_pretrained(d)
        n = sum(p.numel() for p in m.parameters())
        entries.append({
            "model": name, "family": "tiny", "revision": rev, "step": int(rev.removeprefix("step")),
            "n_params": n, "non_embedding_params": n - 2 * VOCAB * 64, "tokens_per_step": 64 * 8,
            "sequences_per_step": 8, "tokens_seen": 64 * 8 * (i + 1), "train_flops": 6.0 * n * 64 * 8 * (i + 1),
            "path": f"{name}/{rev}",
        })  # fmt: skip
    (root / "suite_manifest.json").write_text(json.dumps(entries, indent=2))
    return root / name


@torch.no_grad()
def plain_greedy(model, prompt: torch.Tensor, n: int, suppress: list[int]) -> torch.Tensor:
    """Reference decoder: no cache, full forward each step, argmax of the last position."""
    x = prompt
    for _ in range(n):
        logits = model(input_ids=x, use_cache=False).logits[:, -1, :].clone()
        if suppress:
            logits[:, suppress] = float("-inf")
        x = torch.cat([x, logits.argmax(-1, keepdim=True)], dim=1)
    return x[:, prompt.shape[1] :]


def build_sequences(
    model, n: int, seed: int, prompt_len: int = 32, cont_len: int = 32, suppress_eos: bool = True
) -> np.ndarray:
    """n sequences: 1/3 the model's own greedy continuation (exact matches), 1/3 that continuation
    with one token changed at a random position, 1/3 random tokens."""
    rng = np.random.default_rng(seed)
    prompts = torch.as_tensor(rng.integers(3, VOCAB, size=(n, prompt_len)), dtype=torch.long)
    gen = plain_greedy(model, prompts, cont_len, [EOS] if suppress_eos else []).numpy()
    seqs = np.concatenate([prompts.numpy(), gen], axis=1)
    third = n // 3
    for i in range(third, 2 * third):
        j = int(rng.integers(0, cont_len))
        seqs[i, prompt_len + j] = (
            seqs[i, prompt_len + j] + 1 + int(rng.integers(0, VOCAB - 4))
        ) % (VOCAB - 3) + 3
    seqs[2 * third :, prompt_len:] = rng.integers(3, VOCAB, size=(n - 2 * third, cont_len))
    return seqs.astype(np.int64)


def write_token_table(
    path: Path, seqs: np.ndarray, start: int = 0, meta: bool = True, extra_len: int = 0
) -> Path:
    n = len(seqs)
    rng = np.random.default_rng(0)
    if extra_len:
        seqs = np.concatenate([seqs, rng.integers(3, VOCAB, size=(n, extra_len))], axis=1)
    cols = {
        "seq_idx": pa.array(np.arange(start, start + n, dtype=np.int64)),
        "tokens": pa.array([row.astype(np.int32) for row in seqs], pa.list_(pa.int32())),
    }
    if meta:
        cols["duplicates"] = pa.array((np.arange(n) % 4 + 1).astype(np.int32))
        cols["is_canary"] = pa.array(np.arange(n) % 5 == 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path, row_group_size=max(1, n // 3))
    return path


def write_mmididx(prefix: Path, docs: list[np.ndarray], dtype=np.uint16) -> None:
    """Write <prefix>.bin/.idx exactly as GPT-NeoX's MMapIndexedDatasetBuilder does."""
    prefix.parent.mkdir(parents=True, exist_ok=True)
    sizes = np.array([len(d) for d in docs], dtype=np.int32)
    itemsize = np.dtype(dtype).itemsize
    pointers = np.zeros(len(docs), dtype=np.int64)
    if len(docs) > 1:
        pointers[1:] = np.cumsum(sizes[:-1].astype(np.int64) * itemsize)
    with open(str(prefix) + ".bin", "wb") as f:
        for d in docs:
            f.write(np.asarray(d, dtype=dtype).tobytes(order="C"))
    doc_idx = np.arange(len(docs) + 1, dtype=np.int64)
    with open(str(prefix) + ".idx", "wb") as f:
        f.write(b"MMIDIDX\x00\x00")
        f.write(struct.pack("<Q", 1))
        f.write(struct.pack("<B", MMIDIDX_CODES[dtype]))
        f.write(struct.pack("<Q", len(sizes)))
        f.write(struct.pack("<Q", len(doc_idx)))
        f.write(sizes.tobytes(order="C"))
        f.write(pointers.tobytes(order="C"))
        f.write(doc_idx.tobytes(order="C"))


def train_memorizer(
    out: Path, n_rows: int = 192, length: int = 64, epochs: int = 30, seed: int = 0
) -> tuple[Path, np.ndarray]:
    """A tiny GPT-NeoX trained on `n_rows` random token rows until part of them is memorized
    (STUDIES.md section 9's setting: half-learned rows have near-tied logits, so bf16 and fp32
    labels really differ). Saves model + tokenizer to `out`; returns (out, rows)."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(3, VOCAB, size=(n_rows, length))
    model = make_model(seed, hidden=64)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    data = torch.as_tensor(rows)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(n_rows, generator=gen)
        for i in range(0, n_rows, 32):
            b = data[perm[i : i + 32]]
            loss = model(input_ids=b, labels=b).loss
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    model.save_pretrained(out)
    make_tokenizer().save_pretrained(out)
    return out, rows.astype(np.int64)
