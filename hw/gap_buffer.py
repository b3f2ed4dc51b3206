"""The gap buffer: what a softmax's row buffer keeps of a score so that a later pass recovers
m - x (row maximum less score) from narrow words, written once for PTsoftmax and the softmax
baseline (``gap_buffer``).

A later pass needs m - x only below a limit L (PTsoftmax: P + 1, past which a probability is
0; the softmax: its exponential table's length). So the pass that tracks the running maximum
stores, per score, how it stood to that maximum when it arrived: a rise by d >= 0, or a
distance e > 0 below it (as e - 1, no negation: ~d), clamped at 2**G - 1 >= L, with a flag.
It also adds up the clamped rises of the row. A later pass counts them down: after a score,
what is left is the clamped rises after it, and m - x = that + (its distance below, if it
was no rise). A clamped value is already >= L, so clamping changes nothing below L.

Use, in the maximum's pass (``diff`` = score - running maximum, ``rise`` = first or diff >= 0)::

    word = Signal(gap_layout(G))
    total = count_rises(m, word, diff, rise, first, step, rises_shape(n, G))
    # write `word`; at the row's last score, `total` is the row's figure for later passes

and in a later pass, on the word it reads::

    rest = rises_after(m, word, figure, first, step, "sum")   # clamped rises after the score
    m_minus_x = add_below(rest, word)
"""
from __future__ import annotations

from amaranth import Mux, Signal, unsigned
from amaranth.lib import data

__all__ = ["add_below", "amount", "count_rises", "gap_bits", "gap_layout", "rises_after", "rises_shape"]


def gap_bits(limit: int) -> int:
    """G, so that the clamp 2**G - 1 is at least ``limit``."""
    return max(1, limit.bit_length())


def gap_layout(bits: int) -> data.StructLayout:
    return data.StructLayout({"gap": unsigned(bits), "rise": unsigned(1)})


def rises_shape(row_length: int, bits: int):
    """The sum of a row's clamped rises (its first score's counts none)."""
    return unsigned(max(1, ((row_length - 1) * ((1 << bits) - 1)).bit_length()))


def amount(diff, rise):
    """The unclamped gap of a score ``diff`` = score - running maximum from it: the rise d,
    or the distance below less one, ~d = -d - 1 (no negation)."""
    return Mux(rise, diff, ~diff).as_unsigned()


def count_rises(m, word, diff, rise, first, step, shape):
    """Fill ``word`` for the score of ``diff`` (score - running maximum, signed) and return
    the row's clamped rises including it; the running count is clocked on rises only."""
    bits, gap = len(word.gap), amount(diff, rise)
    m.d.comb += [word.gap.eq(Mux(first, 0, Mux(gap[bits:].any(), (1 << bits) - 1, gap[:bits]))),
                 word.rise.eq(rise)]
    # A row's first score is a rise of 0: the count starts again there, so it is clocked on
    # rises only, with the running maximum.
    rises, total = Signal(shape, name="rises"), Signal(shape, name="rises_total")
    m.d.comb += total.eq(Mux(first, 0, rises + Mux(rise, word.gap, 0)))
    with m.If(step & rise):
        m.d.sync += rises.eq(total)
    return total


def rises_after(m, word, figure, first, step, name: str):
    """The clamped rises after the score of ``word``, counted down from its row's total
    ``figure`` (taken at the row's ``first`` word); the count is clocked on rises only."""
    rises, rest = Signal(len(figure), name=f"{name}_rises"), Signal(len(figure), name=f"{name}_rest")
    m.d.comb += rest.eq(Mux(first, figure, rises) - Mux(word.rise, word.gap, 0))
    with m.If(step & (first | word.rise)):
        m.d.sync += rises.eq(rest)
    return rest


def add_below(value, word):
    """``value`` + the score's distance below the maximum when it arrived (0 for a rise):
    the gap, and its + 1 as the adder's carry in, not an incrementer of its own."""
    return value + Mux(word.rise, 0, word.gap) + ~word.rise
