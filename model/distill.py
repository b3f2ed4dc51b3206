"""Multi-step distillation of the Sorbet student from its fine-tuned teacher.

Stages, each starting from the previous one's weights: ``quant`` (1-bit weights, 4-bit
activations), ``ptsoftmax`` (+ power-of-two softmax), ``bspn`` (+ bit-shifting power norm).
Loss = KL(teacher || student) on the logits (MSE for regression) + the mean squared error of
every block output (embeddings and each layer) over the real tokens (+ ``event_weight`` x the
expected events per neuron and token, :func:`expected_events`, to train toward silence). Each stage is a
resumable :func:`model.training.train_loop`; a finished stage writes ``STAGE.json`` with its
dev metrics and is skipped when the run is started again.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from sorbet_hw.model.bert import encode_batch
from sorbet_hw.model.glue import Examples, Task
from sorbet_hw.model.integer_model import PROJECTION_INPUTS
from sorbet_hw.model.params import ModelFileError, ParameterError, check_choice, check_int
from sorbet_hw.model.student import STAGES, Student, StudentConfig, student_from_teacher
from sorbet_hw.model.teacher import SequenceClassifier, evaluate, new_teacher
from sorbet_hw.model.training import LoopConfig, load_state, train_loop
from sorbet_hw.files import atomic_write, read_record


@dataclass
class DistillConfig:
    task: str = "sst2"
    max_length: int = 64
    batch_size: int = 32
    epochs: float | tuple = 0.3       # per stage: one number for all, or one per stage run
    learning_rate: float = 2e-4
    quantizer_learning_rate: float = 5e-3
    hidden_weight: float = 1.0
    warmup: float = 0.06
    seed: int = 0
    checkpoint_every: int = 100
    weight_kind: str = "binary"
    # Weight of the event penalty; 0 trains without it. What it counts: "unit", the events
    # per neuron and token (:func:`expected_events`), "graded", the weight rows an
    # event-driven layer reads per synapse (:func:`expected_weight_reads`), or "rows", the
    # weight rows a tiled one reads per synapse and tile (:func:`expected_row_reads`).
    event_weight: float = 0.0
    event_count: str = "unit"
    # With event_count "rows": tokens a tile (:func:`expected_row_reads`).
    event_tile: int = 12
    # PTsoftmax's rounding of the row sum to train with ("up" or "nearest"); "" keeps the
    # student's (a new one's default, or a packed one's).
    softmax_rounding: str = ""


def load_teacher(task: Task, path: Path) -> SequenceClassifier:
    if not Path(path).is_file():
        raise ModelFileError(f"teacher checkpoint {path} is missing: run "
                             f"`sorbet-hw train-teacher --task {task.name}` first")
    state = load_state(path, "teacher checkpoint")
    teacher = new_teacher(task)
    try:
        teacher.load_state_dict(state["model"])
    except (KeyError, RuntimeError) as e:
        raise ModelFileError(f"{path} is not a {task.name} teacher checkpoint ({str(e)[:80]})") from None
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def _load_stage(student: Student, path: Path) -> None:
    state = load_state(path, "stage checkpoint")
    try:
        student.load_state_dict(state["model"])
    except RuntimeError as e:
        raise ModelFileError(f"{path} does not fit this student ({str(e)[:80]})") from None


def distillation_loss(task: Task, student_logits, teacher_logits, student_hidden, teacher_hidden,
                      mask, hidden_weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(logit term, hidden term). Logits: KL(teacher || student), or MSE for regression.
    Hidden: sum over block outputs of the mean squared error over real tokens."""
    if task.regression:
        logit = F.mse_loss(student_logits, teacher_logits)
    else:
        logit = F.kl_div(F.log_softmax(student_logits, -1), F.log_softmax(teacher_logits, -1),
                         log_target=True, reduction="batchmean")
    m = mask[..., None].to(student_logits.dtype)
    count = m.sum() * student_hidden[0].shape[-1]
    hidden = sum(((s - t) ** 2 * m).sum() / count for s, t in zip(student_hidden, teacher_hidden))
    return logit, hidden_weight * hidden


# The activations that travel as spikes: every IF layer's input and output (the residual
# stream's two encodings, Q, K, V, the context, the attention output, the FFN hidden layer and
# output).
SPIKING_ACTIVATIONS = ("attention_input", "query", "key", "value", "context",
                       "attention_output", "ffn_input", "intermediate", "output")


def expected_events(records: list[dict], mask: torch.Tensor) -> torch.Tensor:
    """Events per neuron per token: the mean over the spiking activations' neurons and the
    real tokens of |l|, the unit events a level l sends as zero-silent signed spikes (its
    graded event's count is l != 0, which |l| bounds). Differentiable through the quantizers'
    straight-through levels, so training can push levels toward zero."""
    m = mask[..., None].to(torch.float32)
    total, neurons = 0.0, 0
    for record in records[1:]:
        for kind in SPIKING_ACTIVATIONS:
            value, e = record[kind]
            total = total + ((value / 2.0 ** e).abs() * m).sum()
            neurons += value.shape[-1]
    return total / (m.sum() * neurons)


EVENT_COUNTS = ("unit", "graded", "rows")


def graded_fan_outs(layer) -> dict:
    """The quantizers whose nonzero levels travel as graded events into a projection, with
    the synapses each event drives (the weight rows an event-driven layer reads for it: the
    outputs of every projection that reads the activation)."""
    projections = {"query": layer.attention.query, "key": layer.attention.key,
                   "value": layer.attention.value, "attention_output": layer.attention_output,
                   "intermediate": layer.intermediate, "output": layer.output}
    quantizers = {"attention_input": layer.attention.input, "context": layer.attention.context,
                  "ffn_input": layer.ffn_input, "intermediate": layer.intermediate.out}
    return {kind: (quantizer, sum(projections[name].weight.shape[0]
                                  for name, read in PROJECTION_INPUTS.items() if read == kind))
            for kind, quantizer in quantizers.items()}


def track_nonzero(student, on: bool) -> None:
    for layer in student.encoder.layers:
        for quantizer, _ in graded_fan_outs(layer).values():
            quantizer.track_nonzero, quantizer.soft_nonzero = on, None


def expected_weight_reads(student, mask: torch.Tensor) -> torch.Tensor:
    """Weight rows read per synapse and token by the event-driven projections: the mean over
    every synapse fed by a graded event of min(|x| / step, 1), the quantizers' stand-in for
    "its level is nonzero" (run the forward pass with :func:`track_nonzero` on). An FFN input
    event drives 1,536 synapses, an FFN hidden one 384: this weighs them so, as the energy
    does, where :func:`expected_events` weighs every neuron alike."""
    m = mask[..., None].to(torch.float32)
    total, synapses = 0.0, 0
    for layer in student.encoder.layers:
        for quantizer, fan_out in graded_fan_outs(layer).values():
            soft = quantizer.soft_nonzero
            total = total + fan_out * (soft * m).sum()
            synapses += fan_out * soft.shape[-1]
    return total / (m.sum() * synapses)


def tile_union(soft: torch.Tensor, mask: torch.Tensor, tile: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum over real tiles and channels of the chance that some token of the tile is
    nonzero, real tiles): ``soft [B, L, N]`` each token's stand-in for "nonzero" in [0, 1],
    ``mask [B, L]`` the real tokens; tiles of ``tile`` consecutive tokens, the union
    1 - prod(1 - s) (a row is read once a tile if any token of the tile uses it)."""
    b, length, n = soft.shape
    pad = -length % tile
    m = torch.nn.functional.pad(mask.to(soft.dtype), (0, pad))
    s = torch.nn.functional.pad(soft, (0, 0, 0, pad)) * m[..., None]
    tiles = s.view(b, -1, tile, n)
    union = 1 - torch.prod(1 - tiles, dim=2)
    real = m.view(b, -1, tile).amax(dim=2)
    return (union * real[..., None]).sum(), real.sum()


def expected_row_reads(student, mask: torch.Tensor, tile: int) -> torch.Tensor:
    """Weight rows read per synapse and tile by tiled event-driven projections: as
    :func:`expected_weight_reads`, but a row counts once for a tile of ``tile`` tokens if any
    of them uses it (:func:`tile_union`), weighted by the synapses it drives."""
    total, synapses = 0.0, 0
    tiles = None
    for layer in student.encoder.layers:
        for quantizer, fan_out in graded_fan_outs(layer).values():
            used, tiles = tile_union(quantizer.soft_nonzero, mask, tile)
            total = total + fan_out * used
            synapses += fan_out * quantizer.soft_nonzero.shape[-1]
    return total / (tiles * synapses)


def make_student(teacher: SequenceClassifier, cfg: DistillConfig, tokenizer, data: Examples) -> Student:
    """The student initialized from the teacher, activation steps calibrated on a batch."""
    student = student_from_teacher(teacher, StudentConfig(stage="quant", weight_kind=cfg.weight_kind))
    idx = list(range(min(len(data), 64)))
    student.calibrate(encode_batch(tokenizer, [data.text_a[i] for i in idx],
                                   [data.text_b[i] for i in idx] if data.text_b else None))
    return student


def run_distillation(task: Task, teacher: SequenceClassifier, tokenizer, data: Examples,
                     dev: Examples, cfg: DistillConfig, out: Path, *, stages=STAGES,
                     stop_after: int | None = None, progress: bool = True,
                     init: Path | None = None) -> tuple[Student, dict]:
    """Run the distillation stages in order into ``out`` (STAGE.pt, STAGE.json); returns the
    final student and every stage's record. ``init`` (a STAGE.pt of an earlier run, or a
    packed student .npz such as the shipped one) gives the first stage its starting weights,
    to train a finished stage further."""
    for s in stages:
        check_choice("stage", s, STAGES)
    if list(stages) != sorted(stages, key=STAGES.index):
        raise ParameterError(f"stages must keep the order {', '.join(STAGES)}")
    epochs = cfg.epochs if isinstance(cfg.epochs, (tuple, list)) else (cfg.epochs,) * len(stages)
    if len(epochs) != len(stages) or any(e <= 0 for e in epochs):
        raise ParameterError(f"epochs must be one positive number or one per stage "
                             f"({len(stages)}: {', '.join(stages)}), got {cfg.epochs}")
    out.mkdir(parents=True, exist_ok=True)
    records, previous = {}, None
    if init is not None and Path(init).suffix == ".npz":
        # A packed student (the shipped one): its float student, in stage bspn.
        from sorbet_hw.model.checkpoint import load_packed
        from sorbet_hw.model.student import student_from_integer
        if list(stages) != ["bspn"]:
            raise ParameterError("a packed student (--init FILE.npz) trains further in stage "
                                 "bspn only: give --stages bspn")
        student = student_from_integer(load_packed(Path(init), task.name))
    else:
        student = make_student(teacher, cfg, tokenizer, data)
    check_choice("event_count", cfg.event_count, EVENT_COUNTS)
    check_int("event_tile", cfg.event_tile, 1, 512)
    if cfg.softmax_rounding:
        check_choice("softmax_rounding", cfg.softmax_rounding, ("up", "nearest"))
        student.replace_config(softmax_rounding=cfg.softmax_rounding)
    if init is not None and Path(init).suffix != ".npz":
        if not Path(init).is_file():
            raise ModelFileError(f"--init checkpoint {init} is missing: give a STAGE.pt written "
                                 f"by an earlier `sorbet-hw distill`")
        state = load_state(init, "stage checkpoint (--init)")
        try:
            student.set_stage(state["stage"])     # so that entering it again re-initializes nothing
            student.load_state_dict(state["model"])
        except (KeyError, RuntimeError, EOFError, ParameterError) as e:
            raise ModelFileError(f"{init} is not a student stage checkpoint of this shape "
                                 f"({str(e)[:80]})") from None
    for stage, stage_epochs in zip(stages, epochs):
        if previous is not None:
            _load_stage(student, out / f"{previous}.pt")
        student.set_stage(stage)
        done = out / f"{stage}.json"
        record = read_record(done)
        if record is not None and "dev" in record:       # finished (a damaged record: redone)
            records[stage] = record
            previous = stage
            continue
        quant = [p for n, p in student.named_parameters() if "log2_" in n]
        rest = [p for n, p in student.named_parameters() if "log2_" not in n]
        optimizer = torch.optim.AdamW([
            {"params": rest, "lr": cfg.learning_rate, "weight_decay": 0.0},
            {"params": quant, "lr": cfg.quantizer_learning_rate, "weight_decay": 0.0}])

        def batch_loss(idx):
            batch = encode_batch(tokenizer, [data.text_a[i] for i in idx],
                                 [data.text_b[i] for i in idx] if data.text_b else None)
            with torch.no_grad():
                t_logits, t_hidden = teacher(**batch)
            records = [] if cfg.event_weight and cfg.event_count == "unit" else None
            graded = cfg.event_weight and cfg.event_count in ("graded", "rows")
            track_nonzero(student, graded)
            s_logits, s_hidden = student(**batch, records=records)
            logit, hidden = distillation_loss(task, s_logits, t_logits, s_hidden, t_hidden,
                                              batch["attention_mask"], cfg.hidden_weight)
            if not cfg.event_weight:
                return logit + hidden
            mask = batch["attention_mask"]
            if cfg.event_count == "rows":
                events = expected_row_reads(student, mask, cfg.event_tile)
            elif graded:
                events = expected_weight_reads(student, mask)
            else:
                events = expected_events(records, mask)
            track_nonzero(student, False)
            return logit + hidden + cfg.event_weight * events

        loop = LoopConfig(batch_size=cfg.batch_size, epochs=stage_epochs, warmup=cfg.warmup,
                          seed=cfg.seed, checkpoint_every=cfg.checkpoint_every)
        summary = train_loop(student, optimizer, batch_loss, len(data), loop, out / f"{stage}.pt",
                             desc=f"distill {task.name} {stage}",
                             extra={"config": asdict(cfg), "stage": stage},
                             stop_after=stop_after, progress=progress)
        if summary["step"] < summary["total"]:
            return student, records                  # stopped early (tests): not finished
        records[stage] = {"stage": stage, "dev": evaluate(student, task, tokenizer, dev), **summary}
        atomic_write(done, json.dumps(records[stage], indent=2))
        if progress:
            print(f"{task.name} {stage}: dev {records[stage]['dev']}", flush=True)
        previous = stage
    if previous is not None:          # a finished stage skipped above: take its weights
        _load_stage(student, out / f"{previous}.pt")
    return student, records
