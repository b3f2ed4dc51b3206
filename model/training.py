"""The resumable training loop shared by teacher fine-tuning and every distillation step.

A checkpoint holds the model, the optimizer, the schedule position, the data position within
the epoch and the random state, so an interrupted run resumed from it ends with the same
weights as an uninterrupted one (tests check this for the teacher and the student).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn


@dataclass
class LoopConfig:
    batch_size: int = 32
    epochs: float = 1.0
    warmup: float = 0.06
    seed: int = 0
    checkpoint_every: int = 100


def load_state(path: Path, what: str) -> dict:
    """A checkpoint written by :func:`train_loop` (or a teacher's), loaded with
    ``weights_only=True``: tensors, numbers, strings and containers only, so a crafted file
    cannot run code. Anything else is a one-line :class:`ModelFileError`."""
    import pickle
    import zipfile
    from sorbet_hw.model.params import ModelFileError
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{what} {path} does not exist")
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0][:120] if str(e).strip() else "refused"
        raise ModelFileError(f"{path} holds more than tensors and numbers ({first}); sorbet-hw "
                             f"never runs code from a checkpoint: use a {what} it wrote") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
        raise ModelFileError(f"{path} is not a readable {what} ({type(e).__name__}: "
                             f"{str(e).strip().splitlines()[0][:120] if str(e).strip() else ''})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise ModelFileError(f"{path} is not a {what}: it lacks the model's state")
    return state


def total_steps(examples: int, cfg: LoopConfig) -> int:
    return max(int(round(cfg.epochs * max(examples // cfg.batch_size, 1))), 1)


def train_loop(model: nn.Module, optimizer: torch.optim.Optimizer,
               batch_loss: Callable[[np.ndarray], torch.Tensor], examples: int, cfg: LoopConfig,
               checkpoint: Path, *, desc: str, extra: dict | None = None,
               stop_after: int | None = None, progress: bool = True) -> dict:
    """Minimize ``batch_loss(indices)`` over shuffled batches of ``examples`` items, resuming
    from ``checkpoint`` if it exists; linear warm-up then linear decay.

    ``stop_after`` ends the call after that many optimizer steps without saving, as a kill
    would (tests use it). ``extra`` is stored in the checkpoint beside the state.
    """
    steps_per_epoch = max(examples // cfg.batch_size, 1)
    total = total_steps(examples, cfg)
    warmup = max(int(cfg.warmup * total), 1)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(total - warmup, 1))))
    step = 0
    torch.manual_seed(cfg.seed)
    if checkpoint.exists():
        state = load_state(checkpoint, "resume checkpoint")
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            schedule.load_state_dict(state["schedule"])
            step = int(state["step"])
            torch.set_rng_state(state["rng"])
        except (KeyError, RuntimeError, ValueError, TypeError) as e:
            from sorbet_hw.model.params import ModelFileError
            raise ModelFileError(f"{checkpoint} does not resume this run ({type(e).__name__}: "
                                 f"{str(e)[:100]}): delete it to start over, or pick another "
                                 f"output directory") from None

    def save():
        from sorbet_hw.files import atomic_path
        with atomic_path(checkpoint) as tmp:
            torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "schedule": schedule.state_dict(), "step": step, "total": total,
                        "rng": torch.get_rng_state(), **(extra or {})}, tmp)

    bar = None
    if progress and step < total:
        from tqdm import tqdm
        bar = tqdm(total=total, initial=step, desc=desc, unit="step", mininterval=5)
    done_here, loss_avg, started = 0, None, time.time()
    order_epoch, order = None, None
    model.train()
    while step < total and (stop_after is None or done_here < stop_after):
        epoch, pos = divmod(step, steps_per_epoch)
        if epoch != order_epoch:       # the data order is a function of the epoch alone
            order_epoch, order = epoch, np.random.default_rng(cfg.seed + epoch).permutation(examples)
        loss = batch_loss(order[pos * cfg.batch_size:(pos + 1) * cfg.batch_size])
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
