"""Parameter checks shared by the references and the generators, with one-line messages."""
from __future__ import annotations

import ast
import operator
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


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


def as_array(x):
    """``x`` and its array namespace (array API: numpy or torch alike); anything that is not
    an array yet becomes an int64 numpy array. The operators are written once against this
    namespace, so the integer model (numpy) and training (torch) run the same definition."""
    from array_api_compat import array_namespace, is_array_api_obj
    if not is_array_api_obj(x):
        x = np.asarray(x, dtype=np.int64)
    return array_namespace(x), x


def is_integral(xp, x) -> bool:
    return xp.isdtype(x.dtype, "integral")


def signed_range(width: int) -> tuple[int, int]:
    return -(1 << (width - 1)), (1 << (width - 1)) - 1


def signed_width(lo: int, hi: int) -> int:
    """Smallest two's complement width holding every integer in [lo, hi]."""
    width = 1
    while not (-(1 << (width - 1)) <= lo and hi <= (1 << (width - 1)) - 1):
        width += 1
    return width


# Demo weights (a layer's, or a whole demo encoder layer's) are made before anything else is
# checked: a bound on their count keeps an in-range but huge shape from allocating gigabytes.
MAX_DEMO_WEIGHTS = 1 << 22


# -- bounds: integers, or arithmetic over other parameters, shown as written ------------------

_OPERATORS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
              ast.FloorDiv: operator.floordiv, ast.Pow: operator.pow, ast.LShift: operator.lshift}
_FUNCTIONS = {"min": min, "max": max}


class MissingName(LookupError):
    """A bound names a parameter that is not given (a reference checks what it takes)."""


def evaluate(expression: int | str, names: dict) -> int:
    """An integer bound: ``expression`` itself, or the arithmetic it writes over ``names``
    (+ - * // ** <<, unary minus, min and max); nothing else is evaluated."""
    if isinstance(expression, int):
        return expression

    def value(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in names:
                raise MissingName(node.id)
            return int(names[node.id])
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in _FUNCTIONS and not node.keywords):
            return _FUNCTIONS[node.func.id](*map(value, node.args))
        raise ValueError(f"bound {expression!r}: {ast.dump(node)} is not allowed")
    return value(ast.parse(expression, mode="eval").body)


def _bound(expression, names: dict) -> int | None:
    if expression is None:
        return None
    try:
        return evaluate(expression, names)
    except MissingName:
        return None


@dataclass(frozen=True)
class Param:
    """One generator parameter.

    ``default`` None means the block completes it (a layer's weights, its parallelism).
    ``lo`` / ``hi`` bound an integer (or every value of an array) and may name other
    parameters; ``choices`` makes it a string, ``flag`` a boolean (also 0 or 1), ``shape`` an
    integer array of that shape (each side an expression); ``divides`` names what the value
    must divide. ``source`` says where the export reads it in a trained student, at a
    :class:`Site`: a dotted path (``"linear.weights"``, ``"config.time_steps"``) or a function
    of the site; None: a hardware choice, or the default."""
    name: str
    default: Any
    doc: str = ""
    lo: int | str | None = None
    hi: int | str | None = None
    choices: tuple = ()
    flag: bool = False
    shape: tuple = ()
    divides: str | None = None
    source: str | Callable[["Site"], Any] | None = None

    def summary(self) -> str:
        """``int 1..4096`` or ``one of up, nearest``: the type and range as declared."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.flag:
            return "0 or 1"
        span = f"{self.lo if self.lo is not None else ''}..{self.hi if self.hi is not None else ''}"
        if self.shape:
            sides = " x ".join(map(str, self.shape))
            return f"[{sides}] integers" + (f" in {span}" if span != ".." else "")
        text = f"int {span}" if span != ".." else "int"
        return text + (f", divides {self.divides}" if self.divides else "")

    def typed(self, value):
        """``value`` of the declared kind (a range is checked once all kinds are known)."""
        if self.choices:
            if value not in self.choices:
                raise ParameterError(f"{self.name} = {value!r} is not one of: {', '.join(self.choices)}")
            return value
        if self.flag:
            if isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer)) and value in (0, 1)):
                return bool(value)
            raise ParameterError(f"{self.name} must be true or false (1 or 0), got {value!r}")
        if self.shape:
            return np.asarray(value, dtype=np.int64)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ParameterError(f"{self.name} must be an integer, got {value!r}")
        return int(value)

    def check(self, value, names: dict):
        """``value`` (of its kind) within its range; ``names``: every parameter and derived
        quantity a bound may name."""
        if self.choices or self.flag:
            return value
        lo, hi = _bound(self.lo, names), _bound(self.hi, names)
        allowed = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        if any(isinstance(b, str) for b in (self.lo, self.hi)):     # which parameters set it
            allowed += f" ({' .. '.join(str(b) for b in (self.lo, self.hi) if b is not None)})"
        if self.shape:
            arr = np.asarray(value)
            try:
                want = tuple(evaluate(side, names) for side in self.shape)
            except MissingName:
                want = arr.shape
            if arr.shape != want:
                sides = ", ".join(map(str, self.shape))
                raise ParameterError(f"{self.name} must have shape ({sides}) = {want}, got {arr.shape}")
            if arr.size and ((lo is not None and arr.min() < lo) or (hi is not None and arr.max() > hi)):
                raise ParameterError(f"{self.name} values must lie in {allowed}, got "
                                     f"{arr.min()}..{arr.max()}")
            return arr
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ParameterError(f"{self.name} = {value} is out of range; allowed: {allowed}")
        whole = _bound(self.divides, names)
        if whole is not None:
            if whole % value:
                raise ParameterError(f"{self.name} = {value} must divide {self.divides} = {whole}")
        return int(value)


class Parameters(dict):
    """Checked parameters (and the block's derived quantities), also as attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None



def check_params(declared: tuple[Param, ...], values: dict, *, derive: Callable = lambda p: {},
                 rules: tuple = ()) -> Parameters:
    """``values`` (one per declared parameter) checked against every kind, range and rule,
    with the quantities ``derive`` computes added; a :class:`ParameterError` names the first
    parameter out of range. Kinds are checked first, then ranges in declared order (scalars
    before arrays, whose shapes name them), then the rules across parameters."""
    declared = [p for p in declared if p.name in values]     # a reference checks what it takes
    names = Parameters((p.name, p.typed(values[p.name])) for p in declared)
    names.update(derive(names))
    for p in sorted(declared, key=lambda p: bool(p.shape)):
        names[p.name] = p.check(names[p.name], names)
    for rule in rules:
        rule(names)
    return names


@dataclass(frozen=True)
class Site:
    """Where an instance of a block sits in a trained student (an :class:`IntegerStudent`):
    what a parameter's ``source`` reads. Paths start at a field, or at ``config`` (the
    student's quantization config), ``bert`` (its shape) or ``attention`` (the layer's
    attention constants); then attributes or keys."""
    model: Any
    layer: Any = None              # the layer (model.integer_model.Layer), if in one
    name: str = ""                 # the projection or norm
    tokens: int = 0                # the sentence's length
    input_signed: bool = True      # the instance takes signed levels (not the ReLU's)
    output_signed: bool = True     # it makes signed levels (the FFN hidden layer's are not)

    @property
    def linear(self):
        return self.layer.linears[self.name]

    @property
    def norm(self):
        return self.layer.norms[self.name] if self.layer is not None else self.model.embedding_norm

    def read(self, source):
        if callable(source):
            return source(self)
        first, *rest = source.split(".")
        value = {"config": lambda: self.model.config, "bert": lambda: self.model.bert,
                 "attention": lambda: self.model.attention_params(self.layer)}.get(
                     first, lambda: getattr(self, first))()
        for part in rest:
            value = value[part] if isinstance(value, dict) else getattr(value, part)
        return value


def with_sources(declared: tuple[Param, ...], **sources) -> tuple[Param, ...]:
    """``declared`` with the ``source`` of the named parameters replaced."""
    from dataclasses import replace
    missing = set(sources) - {p.name for p in declared}
    if missing:
        raise ValueError(f"no parameter {', '.join(sorted(missing))} to give a source")
    return tuple(replace(p, source=sources[p.name]) if p.name in sources else p for p in declared)


def from_model(declared: tuple[Param, ...], site: Site, **chosen) -> dict:
    """A block's parameters for the instance at ``site``: each declared parameter read from
    its ``source`` (arrays as int64, numbers as Python ints) unless ``chosen`` gives it, or
    left to its default; plus ``chosen`` (the hardware's choices: lanes, inputs a cycle,
    which the block's declaration adds to these)."""
    out = dict(chosen)
    for p in declared:
        if p.name not in chosen and p.source is not None:
            value = site.read(p.source)
            if isinstance(value, np.ndarray):
                value = value.astype(np.int64)
            elif isinstance(value, (bool, np.bool_)):
                value = bool(value)
            elif isinstance(value, (int, np.integer)):
                value = int(value)
            out[p.name] = value
    return out
