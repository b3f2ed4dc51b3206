"""Coarser activation steps after training: fewer nonzero levels, so fewer events.

The event-driven projections read one weight row per *nonzero* input level, so their energy
follows the nonzero fraction of their inputs. Each activation quantizer's step is a power of
two 2**e; raising e by one halves every level (rounded to nearest), and the levels within
half a new step of zero become zero. :func:`coarsen` does that to chosen quantizers of a
packed student: the float student it stands for (:func:`model.student.student_from_integer`)
takes the larger step and is packed again (:func:`model.integer_model.from_student`), so
every threshold shift and bias that depends on the step follows, and the result is an
integer model like any other (the spiking model equals it; the hardware replays it).
"""
from __future__ import annotations

import re

from sorbet_hw.model.params import ParameterError

# What a change names, the quantizer of a student layer it moves, and the packed exponent.
KINDS = {
    "attention_input": (lambda layer: layer.attention.input, "input_exponent"),
    "context": (lambda layer: layer.attention.context, "context_exponent"),
    "ffn_input": (lambda layer: layer.ffn_input, "ffn_input_exponent"),
}


def parse_changes(text: str, layers: int) -> dict[tuple[int, str], int]:
    """``"attention_input:0,1,2+ffn_input:2"`` (each named layer's step one power of two
    coarser; ``kind:layers:delta`` for another delta) as {(layer, kind): delta}."""
    changes: dict[tuple[int, str], int] = {}
    for part in filter(None, text.split("+")):
        fields = part.split(":")
        if len(fields) not in (2, 3) or fields[0] not in KINDS or not re.fullmatch(r"\d+(,\d+)*", fields[1]):
            raise ParameterError(f"step change {part!r}: write KIND:LAYERS[:DELTA] with KIND one of "
                                 f"{', '.join(KINDS)}, e.g. attention_input:0,1,2")
        try:
            delta = int(fields[2]) if len(fields) == 3 else 1
        except ValueError:
            raise ParameterError(f"step change {part!r}: DELTA must be an integer") from None
        for layer in map(int, fields[1].split(",")):
            if layer >= layers:
                raise ParameterError(f"step change {part!r}: the student has layers 0..{layers - 1}")
            changes[(layer, fields[0])] = changes.get((layer, fields[0]), 0) + delta
    return changes


def coarsen(model, changes: dict[tuple[int, str], int]):
    """A copy of the integer student ``model`` whose quantizer (layer, kind) has its step
    exponent moved by ``changes[(layer, kind)]`` (positive: coarser). Raises ParameterError
    when the integer model cannot take the exponent (a bound of its widths)."""
    import torch
    from sorbet_hw.model.integer_model import from_student
    from sorbet_hw.model.student import student_from_integer
    for (layer, kind), delta in changes.items():
        if kind not in KINDS or not 0 <= layer < len(model.layers):
            raise ParameterError(f"no quantizer {kind!r} in layer {layer}")
    student = student_from_integer(model)
    with torch.no_grad():
        for (layer, kind), delta in changes.items():
            KINDS[kind][0](student.encoder.layers[layer]).log2_step += delta
    student.eval()
    out = from_student(student)
    for (layer, kind), delta in changes.items():
        field = KINDS[kind][1]
        want, got = getattr(model.layers[layer], field) + delta, getattr(out.layers[layer], field)
        if got != want:
            raise ParameterError(f"layer {layer}'s {kind} step cannot be 2**{want}: the integer "
                                 f"model's widths bound it (2**{got}); move it less")
    out.meta = dict(model.meta)
    return out


def describe(changes: dict[tuple[int, str], int]) -> str:
    """The changes as :func:`parse_changes` reads them, kinds in order."""
    by_kind: dict[tuple[str, int], list[int]] = {}
    for (layer, kind), delta in sorted(changes.items()):
        by_kind.setdefault((kind, delta), []).append(layer)
    return "+".join(f"{kind}:{','.join(map(str, layers))}" + ("" if delta == 1 else f":{delta}")
                    for (kind, delta), layers in sorted(by_kind.items(), key=lambda kv: list(KINDS).index(kv[0][0])))
