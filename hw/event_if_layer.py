"""Event-driven IF layer generator: work follows input events, membranes in block RAM."""
from __future__ import annotations

import numpy as np
from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sorbet_hw.hw.block import Block, Param, Stream
from sorbet_hw.hw.events import EventCoding, event_layout
from sorbet_hw.hw.if_layer import binary_demo
from sorbet_hw.hw.plumbing import OutputRegister, wrapped_increment
from sorbet_hw.model.event_if_layer import (PARAMS, event_if_layer, level_range, membrane_range)
from sorbet_hw.model.if_layer import check_size, check_weights, initial_membrane, layer_shape
from sorbet_hw.model.params import signed_width

__all__ = ["EventIFLayer", "BLOCK"]

LANES = (Param("lanes", None, "membranes updated a cycle (default all outputs)", lo=1,
               hi="outputs", divides="outputs"),)


def _complete(params: dict) -> dict:
    params = binary_demo({**params, "inputs_per_cycle": 1})
    params.pop("inputs_per_cycle")
    return params


def _input_level_bits(p) -> int:
    return 2 if p.event_kind == "unit" else p.act_bits + 1


BLOCK = Block(
    "event_if_layer", "event-driven IF layer: one weight row a nonzero input, membranes in "
    "block RAM, zero-silent graded events out",
    params=PARAMS + LANES,
    ports={"i_stream": Stream(In, lambda p: event_layout(p.inputs, _input_level_bits(p)),
                              vector=("inputs",),
                              coding=EventCoding(lambda p: level_range(p.act_bits, p.input_signed),
                                                 lambda p: p.event_kind)),
           "o_stream": Stream(Out, lambda p: event_layout(p.outputs, p.act_bits + 1),
                              coding=EventCoding(lambda p: level_range(p.act_bits, p.output_signed)))},
    reference=event_if_layer, derive=layer_shape, rules=(check_size, check_weights),
    complete=_complete, extra_params=("inputs", "outputs", "seed"),
    synth_params={"lanes": 4})


@BLOCK.generates
class EventIFLayer(wiring.Component):
    """N inputs x M outputs IF layer driven by events, as :func:`model.event_if_layer.event_if_layer`.

    Parameters
    ----------
    weights, bias, threshold_shift, weight_kind, act_bits
        As the IF layer's (:class:`hw.if_layer.IFLayer`); the bias is the layer's on signed
        levels (:func:`model.event_if_layer.signed_bias`).
    input_signed, output_signed : bool
        Level ranges in and out (the FFN hidden layer is unsigned).
    event_kind : "graded" or "unit"
        An input event carries a level (graded) or +-1 (unit): the engine is the same, only
        the width of its adders' second operand changes.
    lanes : int
        Membranes updated a cycle; must divide M. G = M / lanes lane groups.

    Ports
    -----
    i_stream : In(stream.Signature(event_layout(N, level bits))), flat
        A token's input events ``{index, level, last}`` then a beat with ``last`` set.
    o_stream : Out(stream.Signature(event_layout(M, act_bits + 1))), flat
        The token's nonzero output levels as graded events, in index order, then ``last``.

    Architecture, latency and throughput
    ------------------------------------
    Weights sit in a ROM (block RAM), row j holding input j's weights, G words of ``lanes``;
    the membranes in a RAM of G words of ``lanes`` membranes, read and written through
    synchronous ports. An event of input j takes G cycles: each issues the reads of one lane
    group (weight word j*G' + g, G' = G rounded up to a power of two so that the address is
    a concatenation, not a multiply; membrane word g), and the cycle after adds +-level to
    ``lanes`` membranes and writes them back. The next event is accepted in the last issuing
    cycle, so events stream at one per G cycles. A read of the word being written in the
    same cycle (always, when G = 1) sees the new value: the membrane RAM's read port is
    transparent for its write port. With no event waiting, no RAM port is enabled and no
    register loads. On ``last``, the drain reads each group (2 cycles), writes back its
    initial membrane (bias + half a threshold) for the next token, and sends one output
    event a cycle for each nonzero level (a priority encoder over the group), then ``last``.
    A token costs G * events + 3 * G + nonzero outputs + 1 cycles when neither side stalls.
    """

    def __init__(self, **params):
        p = BLOCK.check(params)
        self.weights, self.bias = p.weights, p.bias
        self.inputs, self.outputs = p.inputs, p.outputs
        self.threshold_shift, self.act_bits, self.weight_kind = p.threshold_shift, p.act_bits, p.weight_kind
        self.output_signed, self.event_kind, self.lanes = p.output_signed, p.event_kind, p.lanes
        self.groups = p.outputs // p.lanes
        self.group_bits = (self.groups - 1).bit_length()
        self.membrane_shape = signed(signed_width(*membrane_range(
            inputs=p.inputs, bias=p.bias, threshold_shift=p.threshold_shift, act_bits=p.act_bits)))
        self.input_layout = event_layout(p.inputs, _input_level_bits(p))
        self.output_layout = event_layout(p.outputs, p.act_bits + 1)
        super().__init__(BLOCK.signature(p))

    @property
    def weight_bits(self) -> int:
        return 1 if self.weight_kind == "binary" else 2

    def _weight_words(self) -> list[int]:
        """Word (j << group_bits) | g: the weights of input j for lane group g, lane 0 in the
        low bits. Binary: 1 = +1, 0 = -1. Ternary: bit 0 = nonzero, bit 1 = negative."""
        words = []
        for j in range(self.inputs):
            for g in range(1 << self.group_bits):
                word = 0
                for lane in range(self.lanes if g < self.groups else 0):
                    w = int(self.weights[j, g * self.lanes + lane])
                    code = (w > 0) if self.weight_kind == "binary" else (w != 0) | ((w < 0) << 1)
                    word |= int(code) << (lane * self.weight_bits)
                words.append(word)
        return words

    def _initial_words(self) -> list[int]:
        vw = self.membrane_shape.width
        init = initial_membrane(self.bias, self.threshold_shift)
        return [sum((int(init[g * self.lanes + lane]) & ((1 << vw) - 1)) << (lane * vw)
                    for lane in range(self.lanes)) for g in range(self.groups)]

    def elaborate(self, platform):
        m = Module()
        lanes, groups, vw = self.lanes, self.groups, self.membrane_shape.width
        m.submodules.weights = weights = Memory(
            shape=unsigned(lanes * self.weight_bits), depth=self.inputs << self.group_bits,
            init=self._weight_words())
        m.submodules.membranes = membranes = Memory(
            shape=unsigned(lanes * vw), depth=groups, init=self._initial_words())
        m.submodules.initial = initial = Memory(
            shape=unsigned(lanes * vw), depth=groups, init=self._initial_words())
        weight_read = weights.read_port()
        write = membranes.write_port()
        membrane_read = membranes.read_port(transparent_for=(write,))
        initial_read = initial.read_port()

        event = data.View(self.input_layout, self.i_stream.payload)
        # Issue stage: the event being spread over the lane groups.
        busy = Signal()
        index = Signal.like(event.index)
        level = Signal(event.level.shape())
        group = Signal(range(groups))
        # Update stage: the group whose words the RAMs deliver this cycle.
        updating = Signal()
        update_group = Signal(range(groups))
        update_level = Signal(event.level.shape())
        last_group = group == groups - 1
        accept = self.i_stream.valid & self.i_stream.ready
        drain = self._drain_datapath(m)
        drain["membranes"] = membrane_read.data
        with m.FSM() as fsm:
            with m.State("Accept"):
                with m.If(busy):
                    m.d.sync += group.eq(wrapped_increment(group, groups))
                    with m.If(last_group & ~accept):
                        m.d.sync += busy.eq(0)
                with m.If(accept):
                    with m.If(event.last):
                        m.d.sync += busy.eq(0)
                        m.next = "Drain read"
                    with m.Else():
                        m.d.sync += [busy.eq(1), index.eq(event.index), level.eq(event.level),
                                     group.eq(0)]
            self._drain_states(m, drain)
        issuing = busy & fsm.ongoing("Accept")
        drain_read, drain_latch = fsm.ongoing("Drain read"), fsm.ongoing("Drain latch")
        m.d.sync += updating.eq(issuing)
        with m.If(busy):
            m.d.sync += [update_group.eq(group), update_level.eq(level)]
        negated = Signal(signed(update_level.shape().width + 1))
        updated = Cat(self._update(membrane_read.data.word_select(lane, vw).as_signed(),
                                   weight_read.data, lane, update_level, negated)
                      for lane in range(lanes))
        # The RAM ports and the ready are driven by unconditional assignments, never from
        # inside FSM states: Icarus does not evaluate an `always @*` whose inputs all keep
        # their time-zero values, which left the first read address at X. A port is enabled
        # only in the cycles that use it: no event, no access.
        m.d.comb += [
            self.i_stream.ready.eq(fsm.ongoing("Accept") & (~busy | last_group)),
            weight_read.addr.eq(Cat(group, index) if self.group_bits else index),
            weight_read.en.eq(issuing),
            membrane_read.addr.eq(Mux(drain_read, drain["group"], group)),
            membrane_read.en.eq(issuing | drain_read),
            initial_read.addr.eq(drain["group"]),
            initial_read.en.eq(drain_read),
            negated.eq(-update_level),
            # Updates and the drain's re-arming never meet: the drain reads one cycle after
            # the last update and writes the cycle after that.
            write.addr.eq(Mux(updating, update_group, drain["group"])),
            write.en.eq(updating | drain_latch),
            write.data.eq(Mux(updating, updated, initial_read.data)),
        ]
        return m

    def _update(self, membrane, word, lane, level, negated):
        """membrane + w * level for one lane: w selects +level, -level (or nothing)."""
        vw = self.membrane_shape.width
        if self.weight_kind == "binary":
            return (membrane + Mux(word[lane], level, negated))[:vw]
        nonzero, negative = word[2 * lane], word[2 * lane + 1]
        return (membrane + Mux(nonzero, Mux(negative, negated, level), 0))[:vw]

    def _drain_datapath(self, m) -> dict:
        """The drain's registers and the lowest pending lane, found by a one-hot and OR trees
        (log depth, no priority chain)."""
        lanes, level_bits = self.lanes, self.act_bits + 1
        d = {"group": Signal(range(self.groups), name="drain_group"),
             "base": Signal(range(self.outputs)),             # group * lanes, by adds
             "levels": Signal(lanes * level_bits),
             "pending": Signal(lanes),                        # lanes with an unsent level
             "onehot": Signal(lanes), "lane": Signal(range(lanes)), "chosen": Signal(level_bits),
             "output": OutputRegister(m, self.o_stream), "out": Signal(self.output_layout)}
        pending, onehot = d["pending"], d["onehot"]
        m.d.comb += [onehot.eq(pending & (~pending + 1)),
                     d["lane"].eq(_or_tree([Mux(onehot[i], i, 0) for i in range(lanes)])),
                     d["chosen"].eq(_or_tree([Mux(onehot[i], d["levels"].word_select(i, level_bits), 0)
                                              for i in range(lanes)]))]
        return d

    def _drain_states(self, m, d):
        """States that turn a token's membranes into output events and re-arm them (the RAM
        ports they use are driven in :meth:`elaborate`)."""
        lanes, groups = self.lanes, self.groups
        group, base, levels, pending = d["group"], d["base"], d["levels"], d["pending"]
        onehot, lane, chosen, output, out = d["onehot"], d["lane"], d["chosen"], d["output"], d["out"]
        m.d.comb += [out.index.eq(base + lane), out.level.eq(chosen.as_signed())]
        with m.State("Drain read"):
            m.next = "Drain latch"
        with m.State("Drain latch"):
            found = self._levels(d["membranes"])
            m.d.sync += [levels.eq(Cat(found)), pending.eq(Cat(f != 0 for f in found))]
            m.next = "Emit"
        with m.State("Emit"):
            with m.If(pending != 0):
                with m.If(output.free):
                    output.load(out.as_value())
                    m.d.sync += pending.eq(pending & ~onehot)
            with m.Elif(group == groups - 1):
                with m.If(output.free):
                    output.load(self.output_layout.const({"last": 1}).as_value())
                    m.d.sync += [group.eq(0), base.eq(0)]
                    m.next = "Accept"
            with m.Else():
                m.d.sync += [group.eq(group + 1), base.eq(base + lanes)]
                m.next = "Drain read"

    def _levels(self, word) -> list:
        """The output level of each lane's membrane: clamp(v >> threshold_shift, lo, hi)."""
        vw, level_bits = self.membrane_shape.width, self.act_bits + 1
        lo, hi = level_range(self.act_bits, self.output_signed)
        found = []
        for i in range(self.lanes):
            v = word.word_select(i, vw).as_signed() >> self.threshold_shift
            found.append(Mux(v < lo, lo, Mux(v > hi, hi, v))[:level_bits])
        return found


def _or_tree(terms: list):
    while len(terms) > 1:
        terms = [terms[i] | terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]
