"""Stream plumbing the blocks share, written once (as ``amaranth.lib`` writes its primitives):
the registered output of a stream source, wrapping counters and balanced adder trees."""
from __future__ import annotations

from amaranth import Mux, Signal

__all__ = ["OutputRegister", "adder_tree", "balanced_tree", "lowest_set", "or_tree",
           "strided_increment", "weight_code", "wrapped_increment"]


def wrapped_increment(value, modulus: int):
    """``value + 1``, back to 0 after ``modulus - 1``: the next state of a counter over
    0 .. modulus - 1 (a row index, a circular buffer's pointer)."""
    return Mux(value == modulus - 1, 0, value + 1)


def strided_increment(value, stride: int, count: int):
    """``value + stride``, back to 0 after ``(count - 1) * stride``: a counter over 0, stride,
    .., (count - 1) * stride, so that an address row * stride + column is an add, never a
    multiply (a stride that is no power of two would infer one)."""
    return Mux(value == (count - 1) * stride, 0, value + stride)


def balanced_tree(terms: list, combine):
    """``terms`` reduced by a balanced tree of two-input ``combine`` (depth ceil(log2 n))."""
    if not terms:
        raise ValueError("a tree needs at least one term")
    while len(terms) > 1:
        terms = [combine(terms[i], terms[i + 1]) if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]


def adder_tree(terms: list):
    """The sum of ``terms`` by a balanced tree of two-input adders: the shape an
    accumulate-only datapath needs to add P inputs in one cycle."""
    return balanced_tree(terms, lambda a, b: a + b)


def or_tree(terms: list):
    """The OR of ``terms`` by a balanced tree: selects the one term a one-hot leaves nonzero
    in log depth (a priority chain of muxes would be n deep)."""
    return balanced_tree(terms, lambda a, b: a | b)


def lowest_set(m, pending, words, width: int, name: str) -> tuple:
    """(one-hot, index, word) of the lowest set bit of ``pending`` and of that lane's
    ``width``-bit word of ``words``, by a one-hot and OR trees (log depth, no priority chain):
    how an event-driven block picks its next nonzero lane."""
    lanes = len(pending)
    onehot = Signal(lanes, name=f"{name}_onehot")
    index = Signal(range(max(2, lanes)), name=f"{name}_lane")
    word = Signal(width, name=f"{name}_word")
    m.d.comb += [onehot.eq(pending & (~pending + 1)),
                 index.eq(or_tree([Mux(onehot[i], i, 0) for i in range(lanes)])),
                 word.eq(or_tree([Mux(onehot[i], words.word_select(i, width), 0) for i in range(lanes)]))]
    return onehot, index, word


def weight_code(w: int, weight_kind: str) -> int:
    """A weight's bits in a layer's weight ROM. Binary (1 bit): 1 = +1, 0 = -1. Ternary
    (2 bits): bit 0 = nonzero, bit 1 = negative."""
    return int(w > 0) if weight_kind == "binary" else int(w != 0) | (int(w < 0) << 1)


class OutputRegister:
    """The registered output of a stream source: ``valid`` and ``payload`` come from
    flip-flops, so nothing combinational leaves the block.

    ``free`` is high when the register may take a new payload this cycle (it is empty, or its
    payload is being taken); ``load(payload)``, under the condition of the cycles that
    produce one (which must imply ``free``), fills it. ``valid`` drops once the payload is
    taken and nothing new is loaded. Construct it before the ``load`` statements: a later
    statement wins in Amaranth, so loading must come after the default clear.

    With ``held`` (a shape) and ``decode``, the register holds a narrower code of the payload
    and the payload is ``decode(code)``: a function of flip-flops only, as a state machine's
    decoded outputs are; ``load`` then takes the code."""

    def __init__(self, m, o_stream, held=None, decode=None):
        self._m, self._stream = m, o_stream
        self.free = Signal(name="out_free")
        m.d.comb += self.free.eq(~o_stream.valid | o_stream.ready)
        with m.If(self.free):
            m.d.sync += o_stream.valid.eq(0)
        self._register = o_stream.payload
        if held is not None:
            self._register = Signal(held, name="out_code")
            m.d.comb += o_stream.payload.eq(decode(self._register))

    def load(self, payload) -> None:
        self._m.d.sync += [self._stream.valid.eq(1), self._register.eq(payload)]
