"""Parameter checks shared by the references and the generators, with one-line messages."""
from __future__ import annotations


class ParameterError(ValueError):
    """A parameter is out of range; the message names it and the allowed range."""


class ModelFileError(RuntimeError):
    """Pretrained weights, vocabulary or a checkpoint is missing or does not fit."""


def check_int(name: str, value, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterError(f"{name} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        allowed = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise ParameterError(f"{name} = {value} is out of range; allowed: {allowed}")
    return value


def check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ParameterError(f"{name} = {value!r} is not one of: {', '.join(map(str, choices))}")
    return value


def check_divides(divisor_name: str, divisor: int, name: str, value: int) -> None:
    if value % divisor:
        raise ParameterError(f"{divisor_name} = {divisor} must divide {name} = {value}")


def check_parallelism(inputs: int, outputs: int, lanes: int | None,
                      inputs_per_cycle: int | None) -> tuple[int, int]:
    """A layer's (lanes, inputs_per_cycle), defaults (fully parallel) filled in: each at least
    1 and dividing outputs and inputs respectively."""
    lanes = outputs if lanes is None else lanes
    check_int("lanes", lanes, 1, outputs)
    check_divides("lanes", lanes, "outputs", outputs)
    inputs_per_cycle = inputs if inputs_per_cycle is None else inputs_per_cycle
    check_int("inputs_per_cycle", inputs_per_cycle, 1, inputs)
    check_divides("inputs_per_cycle", inputs_per_cycle, "inputs", inputs)
    return lanes, inputs_per_cycle


def signed_range(width: int) -> tuple[int, int]:
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


def signed_width(lo: int, hi: int) -> int:
    """Smallest two's complement width holding every integer in [lo, hi]."""
    width = 1
    while not (-(1 << (width - 1)) <= lo and hi <= (1 << (width - 1)) - 1):
        width += 1
    return width
