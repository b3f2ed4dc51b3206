"""Once-per-row arithmetic spread over several cycles: the reciprocal and the square root that
the conventional baselines need once per softmax row or LayerNorm token.

A row leaves N cycles between two such operations, so a single-cycle divider (which sets Fmax
at a few MHz) is wasted area and delay. These units take ``steps_per_cycle`` digit steps a
cycle; a block picks the fewest that keep up with its rows (:func:`steps_per_cycle`).

Both are stream components, as in ``amaranth.lib``: an operand and a ``tag`` (what the caller
needs to travel with it: a row's maximum, a token's sum) enter on ``i_stream``; the result and
the same tag leave on ``o_stream``.

Latency and throughput: an operand accepted in cycle t gives its result on ``o_stream`` in
cycle t + ``cycles``, cycles = ceil(digits / steps_per_cycle) (the first steps run in the cycle
of acceptance); the result waits there until taken, and a new operand is accepted in the cycle
it is taken: one operation every ``cycles`` cycles, sustained.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from sorbet_hw.hw.plumbing import OutputRegister
from sorbet_hw.model.params import check_int

__all__ = ["SequentialDivider", "SequentialSquareRoot", "steps_per_cycle"]


def steps_per_cycle(digits: int, cycles: int) -> int:
    """The fewest digit steps a cycle that finish ``digits`` steps within ``cycles`` cycles."""
    return -(-digits // max(cycles, 1))


class _Iterative(wiring.Component):
    """The control both units share: ``cycles`` iterations of ``steps`` digit steps, the first
    in the cycle an operand is accepted, then the result held until it is taken.

    A subclass gives ``digits``, ``_registers()`` (the working registers, as signals),
    ``_load(operand)`` (their values before the first step), ``_step(m, values, index)`` (one
    digit step; ``index``, a value, counts the steps from 0) and ``_result(values)``."""

    def __init__(self, operand_shape, result_shape, tag_shape, steps: int):
        check_int("steps_per_cycle", steps, 1, self.digits)
        self.steps_per_cycle = steps
        self.cycles = -(-self.digits // steps)
        self._tag_shape = tag_shape
        super().__init__({
            "i_stream": In(stream.Signature(data.StructLayout({"value": operand_shape, "tag": tag_shape}))),
            "o_stream": Out(stream.Signature(data.StructLayout({"result": result_shape, "tag": tag_shape}))),
        })

    def elaborate(self, platform):
        m = Module()
        busy = Signal()
        count = Signal(range(self.cycles))
        tag = Signal(self._tag_shape)
        registers = self._registers()
        accept = self.i_stream.valid & self.i_stream.ready
        output = OutputRegister(m, self.o_stream)
        m.d.comb += self.i_stream.ready.eq(~busy & output.free)

        def named(values, prefix):
            # Each step reads its inputs several times: signals keep the netlist a chain,
            # not an expression tree that doubles with every step.
            out = [Signal(len(r), name=f"{prefix}_{r.name}") for r in registers]
            m.d.comb += [o.eq(v) for o, v in zip(out, values)]
            return out

        values = named([Mux(busy, r, v) for r, v in
                        zip(registers, self._load(self.i_stream.payload.value))], "start")
        for j in range(self.steps_per_cycle):
            values = named(self._step(m, values, count * self.steps_per_cycle + j), f"step{j}")

        result = Signal.like(self.o_stream.payload)
        m.d.comb += [result.result.eq(self._result(values)),
                     result.tag.eq(Mux(busy, tag, self.i_stream.payload.tag))]
        with m.If(accept):
            m.d.sync += tag.eq(self.i_stream.payload.tag)
        with m.If(accept | busy):
            m.d.sync += [r.eq(v) for r, v in zip(registers, values)]
            with m.If(count == self.cycles - 1):
                m.d.sync += [busy.eq(0), count.eq(0)]
                output.load(result)
            with m.Else():
                m.d.sync += [busy.eq(1), count.eq(count + 1)]
        return m


class SequentialDivider(_Iterative):
    """quotient = ``numerator`` // divisor for a constant numerator: restoring division, one
    quotient bit a step, most significant first.

    Parameters
    ----------
    numerator : int
        The constant dividend (>= 1), e.g. 2**(P + W) for a reciprocal.
    divisor_width : int
        Width of the unsigned divisor; a divisor must be at least 1.
    tag_shape : shape
        What travels with the operand.
    steps_per_cycle : int
        Quotient bits a cycle (1 .. bits of the numerator).

    Ports
    -----
    i_stream : In(stream.Signature({value: unsigned(divisor_width), tag: tag_shape}))
    o_stream : Out(stream.Signature({result: unsigned(bits of the numerator), tag: tag_shape}))
    """

    def __init__(self, *, numerator: int, divisor_width: int, tag_shape=unsigned(1),
                 steps_per_cycle: int = 1):
        check_int("numerator", numerator, 1, 1 << 256)
        check_int("divisor_width", divisor_width, 1, 256)
        self.numerator, self.divisor_width = numerator, divisor_width
        self.digits = numerator.bit_length()
        super().__init__(unsigned(divisor_width), unsigned(self.digits), tag_shape, steps_per_cycle)

    def _registers(self):
        return [Signal(self.divisor_width, name="divisor"),
                # below the divisor between steps; one bit wider while a bit is shifted in
                Signal(self.divisor_width + 1, name="remainder"),
                Signal(self.digits, name="quotient")]

    def _load(self, operand):
        return [operand, 0, 0]

    def _step(self, m, values, index):
        divisor, remainder, quotient = values
        # The numerator's bits, most significant first, after as many leading zeros as the
        # last cycle's unused steps (a zero bit into an empty remainder gives a zero digit).
        padded = self.cycles * self.steps_per_cycle
        msb_first = int(format(self.numerator, f"0{padded}b")[::-1], 2)
        shifted = Cat(Const(msb_first, padded).bit_select(index, 1), remainder)
        fits = shifted >= divisor
        return [divisor, Mux(fits, shifted - divisor, shifted)[:self.divisor_width + 1],
                Cat(fits, quotient)[:self.digits]]

    def _result(self, values):
        return values[2]


class SequentialSquareRoot(_Iterative):
    """floor(sqrt(value)) digit by digit: one root bit a step (two bits of the value), most
    significant first.

    Parameters
    ----------
    value_width : int
        Width of the unsigned operand.
    tag_shape : shape
        What travels with the operand.
    steps_per_cycle : int
        Root bits a cycle (1 .. ceil(value_width / 2)).

    Ports
    -----
    i_stream : In(stream.Signature({value: unsigned(value_width), tag: tag_shape}))
    o_stream : Out(stream.Signature({result: unsigned(ceil(value_width / 2)), tag: tag_shape}))
    """

    def __init__(self, *, value_width: int, tag_shape=unsigned(1), steps_per_cycle: int = 1):
        check_int("value_width", value_width, 1, 512)
        self.value_width = value_width
        self.digits = -(-value_width // 2)
        super().__init__(unsigned(value_width), unsigned(self.digits), tag_shape, steps_per_cycle)

    def _registers(self):
        padded = 2 * self.cycles * self.steps_per_cycle
        return [Signal(padded, name="pending"),           # the value's bits not yet brought down
                Signal(self.digits + 2, name="remainder"),  # value so far - root**2 <= 2 root
                Signal(self.digits, name="root")]

    def _load(self, operand):
        return [operand, 0, 0]

    def _step(self, m, values, index):
        pending, remainder, root = values
        width = len(pending)
        brought = Cat(pending[width - 2:], remainder)      # remainder * 4 + the next two bits
        trial = Cat(Const(1, 2), root)                     # root * 4 + 1
        fits = brought >= trial
        return [(pending << 2)[:width], Mux(fits, brought - trial, brought)[:self.digits + 2],
                Cat(fits, root)[:self.digits]]

    def _result(self, values):
        return values[2]
