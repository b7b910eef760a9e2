"""GPT-NeoX configs, names, parameter counts and the tokenizer of the demo suite."""

from __future__ import annotations

from typing import TYPE_CHECKING

from memwh.demo_suite.settings import (
    EOS_ID,
    FIRST_WORD_ID,
    PAD_ID,
    UNK_ID,
    ModelSize,
    SuiteSettings,
)

if TYPE_CHECKING:
    from transformers import GPTNeoXConfig, PreTrainedTokenizerBase


def neox_config(size: ModelSize, settings: SuiteSettings) -> GPTNeoXConfig:
    """Pythia-style config: untied embeddings, rotary on 25% of head dims, parallel residual."""
    from transformers import GPTNeoXConfig

    return GPTNeoXConfig(
        vocab_size=settings.vocab_size,
        hidden_size=size.hidden,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        intermediate_size=4 * size.hidden,
        max_position_embeddings=2048,
        rotary_pct=0.25,
        use_parallel_residual=True,
        tie_word_embeddings=False,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        bos_token_id=EOS_ID,
        eos_token_id=EOS_ID,
        pad_token_id=PAD_ID,
        use_cache=True,
    )


def param_counts(size: ModelSize, vocab_size: int) -> tuple[int, int]:
    """(total, non-embedding) parameters, computed without building the model.

    Non-embedding excludes both the input embedding and the (untied) output head, which is
    how Pythia's model table counts them. Tests check this against the real module.
    """
    d, L, V = size.hidden, size.layers, vocab_size
    ff = 4 * d
    per_layer = (
        2 * 2 * d  # two LayerNorms
        + d * 3 * d
        + 3 * d  # fused qkv
        + d * d
        + d  # attention output
        + d * ff
        + ff  # mlp up
        + ff * d
        + d  # mlp down
    )
    non_emb = L * per_layer + 2 * d  # + final LayerNorm
    return non_emb + 2 * V * d, non_emb


def model_name(n_params: int) -> str:
    """Pythia-like label from the parameter count: demo-144k, demo-1.1m, demo-4.2m."""
    if n_params < 1_000_000:
        return f"demo-{round(n_params / 1e3)}k"
    return f"demo-{n_params / 1e6:.1f}m".replace(".0m", "m")


def make_tokenizer(vocab_size: int) -> PreTrainedTokenizerBase:
    """Word-level tokenizer: id i <-> "t<i>", whitespace separated, EOS id 0 like Pythia.

    Lets users (and `memwh infer` on text data) tokenize with the model's own tokenizer.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<|endoftext|>": EOS_ID, "<|padding|>": PAD_ID, "<unk>": UNK_ID}
    vocab.update({f"t{i}": i for i in range(FIRST_WORD_ID, vocab_size)})
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")  # joins words with single spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<|padding|>",
        unk_token="<unk>",
        model_max_length=2048,
    )


def tokens_to_text(ids: list[int] | tuple[int, ...]) -> str:
    """Inverse of the tokenizer for content ids (handy for text-dataset fixtures)."""
    return " ".join(f"t{i}" for i in ids)
