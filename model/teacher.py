"""Fine-tuning the full-precision teacher on a GLUE task, resumable after a kill.

A checkpoint holds the model, the optimizer, the schedule position, the data position within
the epoch and the random state, so an interrupted run resumed from it ends with the same
weights as an uninterrupted one (a test checks this).
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from model.bert import BertEncoder, encode_batch, load_pretrained
from model.glue import Examples, Task, metrics


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
    steps_per_epoch = max(len(data) // cfg.batch_size, 1)
    total = max(int(round(cfg.epochs * steps_per_epoch)), 1)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=0.01)
    warmup = max(int(cfg.warmup * total), 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(total - warmup, 1))))
    step = 0
    torch.manual_seed(cfg.seed)
    if checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        step = state["step"]
        torch.set_rng_state(state["rng"])

    def save():
        tmp = checkpoint.with_name(checkpoint.name + ".partial")
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "schedule": schedule.state_dict(), "step": step, "rng": torch.get_rng_state(),
                    "config": asdict(cfg)}, tmp)
        tmp.replace(checkpoint)

    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=total, initial=step, desc=f"teacher {task.name}", unit="step")
    done_here, loss_avg, started = 0, None, time.time()
    order_epoch, order = None, None
    model.train()
    while step < total and (stop_after is None or done_here < stop_after):
        epoch, pos = divmod(step, steps_per_epoch)
        if epoch != order_epoch:       # the data order is a function of the epoch alone
            order_epoch, order = epoch, np.random.default_rng(cfg.seed + epoch).permutation(len(data))
        idx = order[pos * cfg.batch_size:(pos + 1) * cfg.batch_size]
        batch = encode_batch(tokenizer, [data.text_a[i] for i in idx],
                             [data.text_b[i] for i in idx] if data.text_b else None)
        labels = torch.as_tensor(data.labels[idx])
        logits, _ = model(**batch)
        loss = task_loss(task, logits, labels)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        step += 1
        done_here += 1
        loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_avg:.4f}",
                            ex_s=f"{done_here * cfg.batch_size / (time.time() - started):.1f}")
        if step % cfg.checkpoint_every == 0 or step == total:
            save()
    if bar is not None:
        bar.close()
    return {"step": step, "total": total, "loss": loss_avg, "seconds": time.time() - started}


def new_teacher(task: Task) -> SequenceClassifier:
    torch.manual_seed(0)
    return SequenceClassifier(load_pretrained(), task.num_labels)
