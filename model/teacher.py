"""Fine-tuning the full-precision teacher on a GLUE task, resumable after a kill
(:mod:`model.training`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sorbet_hw.model.bert import BertEncoder, encode_batch, load_pretrained
from sorbet_hw.model.glue import Examples, Task, metrics
from sorbet_hw.model.training import LoopConfig, train_loop


@dataclass
class TrainConfig:
    task: str = "sst2"
    max_length: int = 64
    batch_size: int = 32
    epochs: float = 1.0
    learning_rate: float = 5e-5
    warmup: float = 0.06
    seed: int = 0
    checkpoint_every: int = 100


class SequenceClassifier(nn.Module):
    """Encoder + a linear head on the [CLS] output (the package ships no pooler)."""

    def __init__(self, encoder: BertEncoder, num_labels: int):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(encoder.cfg.hidden_dropout_prob)
        self.head = nn.Linear(encoder.cfg.hidden_size, num_labels)

    def forward(self, input_ids, attention_mask, token_type_ids=None):
        hidden = self.encoder(input_ids, attention_mask, token_type_ids)
        logits = self.head(self.dropout(hidden[-1][:, 0]))
        return logits, hidden


def task_loss(task: Task, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if task.regression:
        return nn.functional.mse_loss(logits.squeeze(-1), labels.float())
    return nn.functional.cross_entropy(logits, labels)


def predict(model: SequenceClassifier, task: Task, tokenizer, data: Examples,
            batch_size: int = 64) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(data), batch_size):
            b = encode_batch(tokenizer, data.text_a[i:i + batch_size],
                             data.text_b[i:i + batch_size] if data.text_b else None)
            logits, _ = model(**b)
            out.append(logits.squeeze(-1) if task.regression else logits.argmax(-1))
    return torch.cat(out).numpy()


def evaluate(model, task: Task, tokenizer, data: Examples) -> dict[str, float]:
    return metrics(task, predict(model, task, tokenizer, data), data.labels)


def train(model: SequenceClassifier, task: Task, tokenizer, data: Examples, cfg: TrainConfig,
          checkpoint: Path, *, stop_after: int | None = None, progress: bool = True) -> dict:
    """Fine-tune ``model`` on ``data``, resuming from ``checkpoint`` if it exists.

    ``stop_after`` ends the run after that many optimizer steps in this call without saving,
    as a kill would (tests use it). Returns the training state summary.
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=0.01)

    def batch_loss(idx):
        batch = encode_batch(tokenizer, [data.text_a[i] for i in idx],
                             [data.text_b[i] for i in idx] if data.text_b else None)
        logits, _ = model(**batch)
        return task_loss(task, logits, torch.as_tensor(data.labels[idx]))

    loop = LoopConfig(batch_size=cfg.batch_size, epochs=cfg.epochs, warmup=cfg.warmup,
                      seed=cfg.seed, checkpoint_every=cfg.checkpoint_every)
    return train_loop(model, optimizer, batch_loss, len(data), loop, checkpoint,
                      desc=f"teacher {task.name}", extra={"config": asdict(cfg)},
                      stop_after=stop_after, progress=progress)


def new_teacher(task: Task) -> SequenceClassifier:
    torch.manual_seed(0)
    return SequenceClassifier(load_pretrained(), task.num_labels)
