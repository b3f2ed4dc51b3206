"""A block's one declaration: its name, parameters, stream payloads, reference and generator.

Each ``hw/<block>.py`` declares ``BLOCK = Block(...)`` beside its generator, and everything
else is derived from it (as hls4ml layers declare their attributes once):

- the parameter checks (ranges may name other parameters: ``hi="score_width - 1"``) that the
  generator runs in its constructor, with one-line messages;
- ``--param`` parsing and the listing of ``sorbet-hw generate BLOCK --help``;
- the generator's wiring signature, from the declared payload layouts;
- the bench's encoding of vectors into beats and back, and the input range and shape that
  vector-file validation checks, from the same layouts;
- the call of the reference (``model/<block>.py``) with the parameters it names.

:mod:`hw.blocks` finds every declaration in the ``hw`` package: adding a block touches its
generator, its reference and its bench (``sim/<block>.py``), nothing else.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from amaranth import Shape, unsigned
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from sorbet_hw.model.params import Param, Parameters, ParameterError, check_params, evaluate

__all__ = ["Param", "Stream", "Block", "Parameters"]


@dataclass(frozen=True)
class Stream:
    """A stream port: its direction (``In`` or ``Out``), its payload layout (a function of
    the parameters: a shape, or an ``ArrayLayout`` of several elements a beat) and, for an
    input, the shape of one vector's values for it (expressions over the parameters).

    ``coding`` is for streams whose beats a vector does not fix: events, as many as a
    vector's nonzero values (:class:`hw.events.EventCoding`). It gives the values' range and
    turns vectors into beats and back; without it, values are packed as the layout holds
    them."""
    direction: Any
    layout: Callable[["Parameters"], Any]
    vector: tuple = ()
    coding: Any = None


@dataclass(frozen=True)
class Block:
    """The declaration of one block (see the module docstring).

    ``derive`` computes quantities the ranges and layouts use from the parameters (a layer's
    inputs and outputs, from its weights); ``rules`` are checks across parameters that no
    single range says (run after every range); ``complete`` fills defaults given as None
    (arrays, demo weights) and consumes ``extra_params`` (demo shapes and seeds)."""
    name: str
    doc: str
    params: tuple[Param, ...]
    ports: dict[str, Stream]
    reference: Callable
    derive: Callable[[dict], dict] = field(default=lambda p: {})
    rules: tuple[Callable[["Parameters"], None], ...] = ()
    complete: Callable[[dict], dict] = field(default=lambda p: p)
    extra_params: tuple[str, ...] = ()
    # A conventional baseline: the spiking block it stands in for (synthesis ratios).
    baseline_of: str | None = None
    # Built of other blocks (the encoder layer): not in `all` and the per-block stages.
    composite: bool = False
    # Uses multipliers (the conventional baselines); every other block must infer none.
    multiplies: bool = False
    # What `synth all` and the main job synthesize when no parameter is given.
    synth_params: dict = field(default_factory=dict)
    generator: list = field(default_factory=list, repr=False)     # set by `generates`

    def generates(self, component: type) -> type:
        """Class decorator: ``component`` is this block's generator."""
        self.generator[:] = [component]
        return component

    @property
    def component(self) -> type:
        return self.generator[0]

    # -- parameters --------------------------------------------------------------------
    def defaults(self) -> dict:
        return {p.name: p.default for p in self.params}

    @property
    def arrays(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params if p.shape)

    def resolve(self, params: dict) -> dict:
        """Every parameter, explicit (what a vector file records): defaults merged, values
        as the generator takes them (1.7 is refused, never truncated), None completed."""
        known = {p.name for p in self.params}
        unknown = sorted(set(params) - known - set(self.extra_params))
        if unknown:
            raise ParameterError(f"{self.name} has no parameter {', '.join(unknown)}; "
                                 f"known: {', '.join(sorted(known | set(self.extra_params)))}")
        declared = {p.name: p for p in self.params}
        merged = {**self.defaults(), **params}
        exact = {k: _exact(self.name, k, v, declared.get(k)) for k, v in merged.items()}
        # Completion may size arrays by scalar parameters (BSPN's zero affine part by its
        # channels): their ranges first, so that an absurd one allocates nothing.
        check_params(self.params, {k: v for k, v in exact.items()
                                   if k in declared and not declared[k].shape and v is not None})
        return self.complete(exact)

    def check(self, params: dict) -> Parameters:
        """The resolved parameters checked against every range and rule, with the derived
        quantities added; a :class:`ParameterError` names the first one out of range."""
        return check_params(self.params, self.resolve(params), derive=self.derive, rules=self.rules)

    def build(self, params: dict):
        return self.component(**self.resolve(params))

    def listing(self) -> str:
        """The parameters as `sorbet-hw generate BLOCK --help` lists them."""
        width = max(len(p.name) for p in self.params)
        lines = [f"{self.name}: {self.doc}", "", "parameters (--param NAME=VALUE):"]
        for p in self.params:
            default = "completed" if p.default is None else repr(p.default)
            lines.append(f"  {p.name:<{width}}  {p.summary()}; default {default}")
            lines.append(f"  {'':<{width}}    {p.doc}{_exported_from(p.source)}")
        if self.extra_params:
            lines.append(f"  ({', '.join(self.extra_params)}: the shape and seed of demo weights)")
        return "\n".join(lines)

    # -- the generator's signature and the bench's beats --------------------------------
    def signature(self, p: Parameters) -> dict:
        """The generator's ports. A payload of several elements is a flat vector of their bits
        (element i at bits i * width upwards): as a View, Amaranth would add a wire per element
        to the Verilog, which the layouts here only describe."""
        def flat(layout):
            return unsigned(layout.size) if isinstance(layout, data.Layout) else layout
        return {port: s.direction(stream.Signature(flat(s.layout(p)))) for port, s in self.ports.items()}

    @property
    def input_ports(self) -> list[str]:
        return [port for port, s in self.ports.items() if s.direction is In]

    @property
    def output_port(self) -> str:
        return next(port for port, s in self.ports.items() if s.direction is Out)

    def input_spec(self, p: Parameters) -> tuple[tuple, int, int]:
        """(shape of one vector, lowest, highest value) of the inputs; several input ports
        stack their vectors along the first axis."""
        ports = self.input_ports
        shapes = {tuple(evaluate(side, p) for side in self.ports[port].vector) for port in ports}
        ranges = {self.ports[port].coding.value_range(p) if self.ports[port].coding else
                  _value_range(_element(self.ports[port].layout(p))[0]) for port in ports}
        if len(shapes) != 1 or len(ranges) != 1:
            raise ValueError(f"{self.name}: input ports of different vectors")
        shape = shapes.pop()
        return ((len(ports), *shape) if len(ports) > 1 else shape), *ranges.pop()

    def encode(self, p: Parameters, inputs: np.ndarray) -> dict[str, list[int]]:
        """The beats of every input port: a port's values in order, as many a beat as its
        payload holds, element i at bits i * width upwards."""
        ports = self.input_ports
        split = [inputs[:, i] for i in range(len(ports))] if len(ports) > 1 else [inputs]
        return {port: self._to_beats(port, p, values) for port, values in zip(ports, split)}

    def _to_beats(self, port: str, p: Parameters, values: np.ndarray) -> list[int]:
        s = self.ports[port]
        if s.coding is not None:
            return s.coding.to_beats(s.layout(p), p, values)
        return pack(values, *_element(s.layout(p)))

    def output_beats(self, p: Parameters, expected: np.ndarray) -> int:
        """Beats the output port sends for ``expected``."""
        s = self.ports[self.output_port]
        if s.coding is not None:
            return len(self._to_beats(self.output_port, p, expected))
        _, count = _element(s.layout(p))
        return expected.size // count

    def output_ends(self, p: Parameters, expected: np.ndarray) -> tuple | None:
        """For an output whose beat count varies (events): (is_end(beat), vectors), how a
        monitor knows every vector came; None for a fixed count."""
        s = self.ports[self.output_port]
        if s.coding is None:
            return None
        return s.coding.is_end(s.layout(p)), int(np.prod(expected.shape[:-1], dtype=np.int64))

    def decode(self, p: Parameters, beats: list[int], expected_shape: tuple) -> np.ndarray:
        s = self.ports[self.output_port]
        if s.coding is not None:
            return s.coding.from_beats(s.layout(p), p, beats, expected_shape)
        shape, count = _element(s.layout(p))
        return unpack(beats, shape, count).reshape(expected_shape)

    def run_reference(self, p: dict, inputs: np.ndarray) -> np.ndarray:
        """The reference on ``inputs`` (one array per input port, stacked on axis 1), given
        the parameters its signature names (all of them, if it takes ``**params``)."""
        ports = self.input_ports
        args = [inputs[:, i] for i in range(len(ports))] if len(ports) > 1 else [inputs]
        sig = inspect.signature(self.reference).parameters
        if any(q.kind is q.VAR_KEYWORD for q in sig.values()):
            return self.reference(*args, **{k: v for k, v in p.items() if k in self.defaults()})
        return self.reference(*args, **{k: p[k] for k in sig if k in p})


def _element(layout) -> tuple[Shape, int]:
    """(element shape, elements a beat) of a payload layout."""
    if isinstance(layout, data.ArrayLayout):
        return Shape.cast(layout.elem_shape), layout.length
    return Shape.cast(layout), 1


def _value_range(shape: Shape) -> tuple[int, int]:
    if shape.signed:
        return -(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1
    return 0, (1 << shape.width) - 1


def pack(values: np.ndarray, shape: Shape, count: int) -> list[int]:
    """Values (any array; row-major) into beats of ``count`` elements of ``shape``."""
    width, mask = shape.width, (1 << shape.width) - 1
    flat = np.asarray(values, dtype=np.int64).reshape(-1, count) & mask
    if width * count <= 62:
        return (flat << (np.arange(count, dtype=np.int64) * width)).sum(axis=1).tolist()
    if width == 1:
        packed = np.packbits(flat.astype(np.uint8), axis=1, bitorder="little")
        return [int.from_bytes(row.tobytes(), "little") for row in packed]
    beats = [0] * len(flat)
    for i in range(count):
        beats = [b | (int(v) << (i * width)) for b, v in zip(beats, flat[:, i])]
    return beats


def unpack(beats: list[int], shape: Shape, count: int) -> np.ndarray:
    """Beats back to values ``[beats, count]``, sign-extended for a signed shape."""
    width, mask = shape.width, (1 << shape.width) - 1
    if width * count <= 62:
        arr = np.asarray(beats, dtype=np.int64)[:, None] >> (np.arange(count, dtype=np.int64) * width)
        values = arr & mask
    else:
        values = np.array([[(b >> (i * width)) & mask for i in range(count)] for b in beats],
                          dtype=np.int64).reshape(len(beats), count)
    if shape.signed:
        values = np.where(values >= 1 << (width - 1), values - (1 << width), values)
    return values


def _exact(block: str, name: str, value, param: Param | None):
    """``value`` as the generator takes it, or a ParameterError naming the parameter when it
    is not an integer (or an array of integers)."""
    is_array = param is not None and bool(param.shape)
    if value is None:
        return value
    if isinstance(value, str):
        if param is not None and not param.choices:
            raise ParameterError(f"{block} parameter {name} must be "
                                 f"{'an array' if is_array else 'an integer'}, got {value!r}")
        return value
    if param is not None and param.choices:
        raise ParameterError(f"{block} parameter {name} must be a string, got {value!r}")
    if is_array or isinstance(value, (np.ndarray, list, tuple)):
        try:
            arr = np.asarray(value)
        except ValueError:
            raise ParameterError(f"{block} parameter {name} is not a rectangular array") from None
        ndim = len(param.shape) if is_array else 1
        if is_array and arr.ndim != ndim:
            raise ParameterError(f"{block} parameter {name} must be a {ndim}-D array, got shape "
                                 f"{arr.shape}")
        if arr.dtype.kind in "iub":
            return arr.astype(np.int64)
        if arr.dtype.kind == "f":
            bad = arr[~(np.isfinite(arr) & (arr == np.round(arr)))]
            if bad.size == 0 and (arr.size == 0 or np.abs(arr).max() < 2 ** 62):
                return arr.astype(np.int64)
            shown = bad.reshape(-1)[0] if bad.size else np.abs(arr).max()
            raise ParameterError(f"{block} parameter {name} must hold integers, found {shown}")
        raise ParameterError(f"{block} parameter {name} must be an integer array, got {arr.dtype}")
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        raise ParameterError(f"{block} parameter {name} = {value} is not an integer")
    raise ParameterError(f"{block} parameter {name} has the wrong type ({type(value).__name__})")


def _exported_from(source) -> str:
    """Where `export-vectors` reads a parameter in a student, for the listing."""
    if source is None:
        return ""
    if callable(source):
        doc = (source.__doc__ or "").strip().split("\n")[0].rstrip(".")
        return f" (export: {doc[0].lower() + doc[1:]})" if doc else " (export: computed from the student)"
    return f" (export: {source})"
