"""Event-driven IF layer generator: work follows input events, membranes in block RAM."""
from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sorbet_hw.hw.block import Block, Param, Stream
from sorbet_hw.hw.events import EventCoding, event_layout
from sorbet_hw.hw.if_layer import binary_demo
from sorbet_hw.hw.plumbing import OutputRegister, lowest_set, or_tree, weight_code
from sorbet_hw.hw.tiles import TILE
from sorbet_hw.model.event_if_layer import (PARAMS, event_if_layer, level_range, membrane_range,
                                            window_steps)
from sorbet_hw.model.if_layer import check_size, check_weights, initial_membrane, layer_shape
from sorbet_hw.model.params import ParameterError, signed_width

__all__ = ["EventIFLayer", "BLOCK"]

LANES = (Param("lanes", None, "membranes updated a cycle (default all outputs)", lo=1,
               hi="outputs", divides="outputs"),
         Param("batch", None, "events buffered per pass over the membranes (default: the most "
               "a tile can hold, so that a tile is one pass)", lo=1, hi=1 << 20), TILE)


def _tile_events(p) -> int:
    """The most beats a tile can take: one per input (graded), or one per unit event of the
    input's busiest token (unit; :class:`hw.events.EventCoding`)."""
    steps = 1 if p["event_kind"] == "graded" else window_steps(p["act_bits"], p["input_signed"])
    return len(p["weights"]) * steps


def _complete(params: dict) -> dict:
    params = binary_demo({**params, "inputs_per_cycle": 1})
    params.pop("inputs_per_cycle")
    if params.get("batch") is None:
        params["batch"] = len(params["weights"]) if params["tokens_per_tile"] == 1 else _tile_events(params)
    return params


def _check_tiles(p) -> None:
    if p.tokens_per_tile > 1 and p.batch < _tile_events(p):
        raise ParameterError(f"event_if_layer: batch = {p.batch} cannot hold a tile "
                             f"({_tile_events(p)} beats at most); leave batch out or raise it")


def _input_level_bits(p) -> int:
    return 2 if p.event_kind == "unit" else p.act_bits + 1


BLOCK = Block(
    "event_if_layer", "event-driven IF layer: one weight row a nonzero input, membranes in "
    "block RAM, zero-silent graded events out",
    params=PARAMS + LANES,
    ports={"i_stream": Stream(In, lambda p: event_layout(p.inputs, _input_level_bits(p), p.tokens_per_tile),
                              vector=("inputs",),
                              coding=EventCoding(lambda p: level_range(p.act_bits, p.input_signed),
                                                 lambda p: p.event_kind, lambda p: p.tokens_per_tile)),
           "o_stream": Stream(Out, lambda p: event_layout(p.outputs, p.act_bits + 1),
                              coding=EventCoding(lambda p: level_range(p.act_bits, p.output_signed)))},
    reference=event_if_layer, derive=layer_shape, rules=(check_size, check_weights, _check_tiles),
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
    batch : int
        Events buffered before a pass over the membranes. Default N: a token of graded
        events (at most one per input) is then always one pass.
    tokens_per_tile : int
        T tokens share each weight-row read (below).

    Ports
    -----
    i_stream : In(stream.Signature(event_layout(N, level bits, T))), flat
        A token's input events ``{index, level, last}`` then a beat with ``last`` set; with
        tiles, ``{index, levels[T], last, token}`` (:class:`hw.events.EventCoding`).
    o_stream : Out(stream.Signature(event_layout(M, act_bits + 1))), flat
        The token's nonzero output levels as graded events, in index order, then ``last``.

    Architecture, latency and throughput
    ------------------------------------
    Events are collected, one a cycle, into a buffer RAM of ``batch`` words. A pass then
    visits each lane group g: it reads the group's ``lanes`` membranes from the membrane RAM
    (G words, synchronous ports, as block RAM) into an accumulator, streams the buffered
    events through it (for each, the ROM word j * G' + g of input j's weights, G' = G
    rounded up to a power of two so that the address is a concatenation, not a multiply;
    each lane adds +level, -level or nothing), and writes the group back. Membrane RAM
    traffic is thus one read and one write per group a pass, not per event. The pass that
    ends a token (its ``last`` beat) writes back the initial membranes (bias + half a
    threshold, from a ROM) instead, and sends one output event a cycle for each nonzero
    level of the group (a priority encoder), then ``last``. No membrane word is read in the
    cycle it is written (the read of a group comes at least a cycle after its write), so the
    RAM needs no bypass; a test checks the schedule cycle by cycle. With no event, no RAM
    port is enabled and the accumulator does not load.

    A token of E < batch events costs E + G * (E + 5) + nonzero outputs + 1 cycles when
    neither side stalls (from one last beat out to the next): work follows events, plus a
    fixed 5 G. Each time the buffer fills, a pass that writes the groups back costs
    G * (batch + 4) more.

    Tiles (``tokens_per_tile`` T > 1, :mod:`hw.tiles`). A beat carries one input index and
    the level of every token of the tile there; the tile comes as one pass (``batch`` must
    hold its beats: N for graded events). The membranes of the tile's tokens live in
    registers (T x lanes), each token with its own adders. For each group, the pass loads
    them with the initial membranes, then streams the beats: the weight row of an index is
    read once for its run of beats (once a tile, for graded events), and every token with a
    nonzero level there updates its lanes in the same cycle; a silent token's adders see
    zero and its registers are not clocked. The group ends by writing each token's output
    levels to an output RAM (T * G words), one token a cycle; once every group is done the
    tile is read out token by token, each word's nonzero levels as events (one a cycle),
    ``last`` after each token. A tile of t tokens and B beats costs B + G * (B + t + 5)
    cycles, plus t * G + nonzero outputs + t to read out.
    """

    def __init__(self, **params):
        p = BLOCK.check(params)
        self.weights, self.bias = p.weights, p.bias
        self.inputs, self.outputs = p.inputs, p.outputs
        self.threshold_shift, self.act_bits, self.weight_kind = p.threshold_shift, p.act_bits, p.weight_kind
        self.output_signed, self.event_kind, self.lanes = p.output_signed, p.event_kind, p.lanes
        self.batch, self.tokens_per_tile = p.batch, p.tokens_per_tile
        self.groups = p.outputs // p.lanes
        self.group_bits = (self.groups - 1).bit_length()
        self.membrane_shape = signed(signed_width(*membrane_range(
            inputs=p.inputs, bias=p.bias, threshold_shift=p.threshold_shift, act_bits=p.act_bits)))
        self.input_layout = event_layout(p.inputs, _input_level_bits(p), p.tokens_per_tile)
        self.output_layout = event_layout(p.outputs, p.act_bits + 1)
        super().__init__(BLOCK.signature(p))

    @property
    def weight_bits(self) -> int:
        return 1 if self.weight_kind == "binary" else 2

    def _weight_words(self) -> list[int]:
        """Word (j << group_bits) | g: the weights of input j for lane group g, lane 0 in the
        low bits (:func:`hw.plumbing.weight_code`)."""
        words = []
        for j in range(self.inputs):
            for g in range(1 << self.group_bits):
                word = 0
                for lane in range(self.lanes if g < self.groups else 0):
                    code = weight_code(self.weights[j, g * self.lanes + lane], self.weight_kind)
                    word |= code << (lane * self.weight_bits)
                words.append(word)
        return words

    def _initial_words(self) -> list[int]:
        vw = self.membrane_shape.width
        init = initial_membrane(self.bias, self.threshold_shift)
        return [sum((int(init[g * self.lanes + lane]) & ((1 << vw) - 1)) << (lane * vw)
                    for lane in range(self.lanes)) for g in range(self.groups)]

    def elaborate(self, platform):
        if self.tokens_per_tile > 1:
            return self._elaborate_tiles()
        m = Module()
        lanes, groups, vw, batch = self.lanes, self.groups, self.membrane_shape.width, self.batch
        m.submodules.weights = weights = Memory(
            shape=unsigned(lanes * self.weight_bits), depth=self.inputs << self.group_bits,
            init=self._weight_words())
        m.submodules.membranes = membranes = Memory(
            shape=unsigned(lanes * vw), depth=groups, init=self._initial_words())
        m.submodules.initial = initial = Memory(
            shape=unsigned(lanes * vw), depth=groups, init=self._initial_words())
        m.submodules.events = events = Memory(shape=unsigned(self.input_layout.size), depth=batch, init=[])
        weight_read, initial_read = weights.read_port(), initial.read_port()
        write, membrane_read = membranes.write_port(), membranes.read_port()
        event_write, event_read = events.write_port(), events.read_port()

        # For tests that watch the schedule (the RAM hazard) from Amaranth's simulator.
        self.membrane_ports = (membrane_read, write)
        event = data.View(self.input_layout, self.i_stream.payload)
        stored = data.View(self.input_layout, event_read.data)
        count = Signal(range(batch + 1))              # events in the buffer
        final = Signal()                              # the pass ends the token
        group = Signal(range(groups))
        acc = Signal(lanes * vw)                      # the membranes of the group in pass
        first = Signal()                              # acc loads from the membrane RAM
        issue = Signal(range(batch + 1))              # next buffered event to read
        fetched = Signal()                            # event_read.data is an event of the pass
        weighed = Signal()                            # weight_read.data is its weight row word
        weighed_level = Signal(event.level.shape())
        negated = Signal(signed(weighed_level.shape().width + 1))
        drain = self._drain_datapath(m)
        base, output = drain["base"], drain["output"]

        accept = self.i_stream.valid & self.i_stream.ready
        last_group = group == groups - 1
        next_group = [group.eq(group + 1), base.eq(base + lanes)]
        back_to_collect = [group.eq(0), base.eq(0), count.eq(0), final.eq(0)]
        with m.FSM() as fsm:
            with m.State("Collect"):
                with m.If(accept):
                    with m.If(event.last):
                        m.d.sync += final.eq(1)
                        m.next = "Group start"
                    with m.Else():
                        m.d.sync += count.eq(count + 1)
                        with m.If(count == batch - 1):
                            m.next = "Group start"
            with m.State("Group start"):
                m.d.sync += [first.eq(1), fetched.eq(count != 0), issue.eq(count != 0)]
                m.next = "Accumulate"
            with m.State("Accumulate"):
                m.d.sync += [first.eq(0), fetched.eq(issue < count), weighed.eq(fetched),
                             weighed_level.eq(stored.level)]
                with m.If(issue < count):
                    m.d.sync += issue.eq(issue + 1)
                with m.If(first):
                    m.d.sync += acc.eq(membrane_read.data)
                with m.Elif(weighed):
                    m.d.sync += acc.eq(Cat(self._update(acc.word_select(lane, vw).as_signed(),
                                                        weight_read.data, lane, weighed_level, negated)
                                           for lane in range(lanes)))
                with m.If(~first & ~fetched & ~weighed):
                    m.next = "Group end"
            with m.State("Group end"):
                with m.If(final):
                    found = self._levels(acc)
                    m.d.sync += [drain["levels"].eq(Cat(found)),
                                 drain["pending"].eq(Cat(f != 0 for f in found))]
                    m.next = "Emit"
                with m.Elif(last_group):
                    m.d.sync += back_to_collect
                    m.next = "Collect"
                with m.Else():
                    m.d.sync += next_group
                    m.next = "Group start"
            with m.State("Emit"):
                with m.If(drain["pending"] != 0):
                    with m.If(output.free):
                        output.load(drain["out"].as_value())
                        m.d.sync += drain["pending"].eq(drain["pending"] & ~drain["onehot"])
                with m.Elif(last_group):
                    with m.If(output.free):
                        output.load(self.output_layout.const({"last": 1}).as_value())
                        m.d.sync += back_to_collect
                        m.next = "Collect"
                with m.Else():
                    m.d.sync += next_group
                    m.next = "Group start"
        group_start, group_end = fsm.ongoing("Group start"), fsm.ongoing("Group end")
        accumulating = fsm.ongoing("Accumulate")
        # The ports are driven by unconditional assignments, never from inside FSM states:
        # Icarus does not evaluate an `always @*` whose inputs all keep their time-zero
        # values (it left a first read address at X). A port is enabled only in the cycles
        # that use it: no event, no access.
        m.d.comb += [
            self.i_stream.ready.eq(fsm.ongoing("Collect")),
            event_write.addr.eq(count), event_write.data.eq(self.i_stream.payload),
            event_write.en.eq(accept & ~event.last),
            event_read.addr.eq(Mux(group_start, 0, issue)),
            event_read.en.eq(Mux(group_start, count != 0, accumulating & (issue < count))),
            weight_read.addr.eq(Cat(group, stored.index) if self.group_bits else stored.index),
            weight_read.en.eq(accumulating & fetched),
            membrane_read.addr.eq(group), membrane_read.en.eq(group_start),
            initial_read.addr.eq(group), initial_read.en.eq(group_start),
            negated.eq(-weighed_level),
            # A pass writes its group back once; a token's last pass re-arms it instead. A
            # word is never read in the cycle it is written (Group start comes at least one
            # cycle after the Group end of the same word), so the RAM needs no bypass.
            write.addr.eq(group), write.en.eq(group_end),
            write.data.eq(Mux(final, initial_read.data, acc)),
        ]
        return m

    def _elaborate_tiles(self):
        """Tiles of T tokens (see the class docstring): one pass a tile, membranes in
        registers, a weight row read once per run of events at its index."""
        m = Module()
        lanes, groups, vw, tile = self.lanes, self.groups, self.membrane_shape.width, self.tokens_per_tile
        level_bits = self.act_bits + 1
        m.submodules.weights = weights = Memory(
            shape=unsigned(lanes * self.weight_bits), depth=self.inputs << self.group_bits,
            init=self._weight_words())
        m.submodules.initial = initial = Memory(
            shape=unsigned(lanes * vw), depth=groups, init=self._initial_words())
        m.submodules.events = events = Memory(shape=unsigned(self.input_layout.size), depth=self.batch, init=[])
        m.submodules.outputs = outputs = Memory(shape=unsigned(lanes * level_bits), depth=groups * tile, init=[])
        weight_read, initial_read = weights.read_port(), initial.read_port()
        event_write, event_read = events.write_port(), events.read_port()
        result, output_read = outputs.write_port(), outputs.read_port()

        event = data.View(self.input_layout, self.i_stream.payload)
        stored = data.View(self.input_layout, event_read.data)
        count = Signal(range(self.batch + 1))         # events of the tile
        tokens = Signal(range(tile + 1))              # tokens of the tile
        group = Signal(range(groups))
        membranes = [Signal(lanes * vw, name=f"membranes{t}") for t in range(tile)]
        first = Signal()                              # the membranes load their initial values
        issue = Signal(range(self.batch + 1))         # next buffered event to read
        fetched = Signal()                            # event_read.data is an event of the pass
        weighed = Signal()                            # weight_read.data is its weight row word
        row = Signal.like(stored.index)               # the row weight_read.data holds
        row_held = Signal()                           # ... read in this pass
        weighed_levels = Signal.like(stored.levels)   # the beat's level for each token
        store_token = Signal(range(tile))
        store_addr = Signal(range(groups * tile))     # store_token * G + group, by adds
        words = Signal(range(groups * tile + 1))      # the tile's output words: tokens * G

        accept = self.i_stream.valid & self.i_stream.ready
        # Storing reads one token's membranes a cycle, through a selector that moves only
        # while storing.
        storing = Array(membranes)[store_token]
        reading_out = Signal()
        read_out = self._read_out_tiles(m, output_read, words, reading_out)
        with m.FSM() as fsm:
            with m.State("Collect"):
                with m.If(accept):
                    with m.If(event.last):
                        m.d.sync += tokens.eq(event.token + 1)
                        m.next = "Group start"
                    with m.Else():
                        m.d.sync += count.eq(count + 1)
            with m.State("Group start"):
                m.d.sync += [first.eq(1), fetched.eq(count != 0), issue.eq(count != 0), row_held.eq(0)]
                m.next = "Accumulate"
            with m.State("Accumulate"):
                m.d.sync += [first.eq(0), fetched.eq(issue < count), weighed.eq(fetched)]
                with m.If(fetched):
                    m.d.sync += weighed_levels.eq(stored.levels)
                with m.If(issue < count):
                    m.d.sync += issue.eq(issue + 1)
                with m.If(fetched):
                    m.d.sync += [row.eq(stored.index), row_held.eq(1)]
                with m.If(first):
                    m.d.sync += [v.eq(initial_read.data) for v in membranes]
                with m.Else():
                    # Every token of the beat at once, each through its own adders; a silent
                    # token's operands stay zero and its membranes keep their clock off.
                    for t in range(tile):
                        level = weighed_levels[t]
                        negated = Signal(signed(len(level) + 1), name=f"negated{t}")
                        m.d.comb += negated.eq(-level)
                        total = Cat(self._update(membranes[t].word_select(lane, vw).as_signed(),
                                                 weight_read.data, lane, level, negated)
                                    for lane in range(lanes))
                        with m.If(weighed & (level != 0)):
                            m.d.sync += membranes[t].eq(total)
                with m.If(~first & ~fetched & ~weighed):
                    m.d.sync += [store_token.eq(0), store_addr.eq(group)]
                    m.next = "Store"
            with m.State("Store"):
                m.d.sync += [store_token.eq(store_token + 1), store_addr.eq(store_addr + groups)]
                with m.If(store_token == tokens - 1):
                    with m.If(group == groups - 1):
                        m.d.sync += group.eq(0)
                        m.next = "Read out"
                    with m.Else():
                        m.d.sync += group.eq(group + 1)
                        m.next = "Group start"
            with m.State("Read out"):
                with m.If(read_out):
                    m.d.sync += [count.eq(0), tokens.eq(0)]
                    m.next = "Collect"
        group_start, accumulating = fsm.ongoing("Group start"), fsm.ongoing("Accumulate")
        m.d.comb += reading_out.eq(fsm.ongoing("Read out"))
        new_row = ~row_held | (stored.index != row)
        m.d.comb += [
            self.i_stream.ready.eq(fsm.ongoing("Collect")),
            event_write.addr.eq(count), event_write.data.eq(self.i_stream.payload),
            event_write.en.eq(accept & ~event.last),
            event_read.addr.eq(Mux(group_start, 0, issue)),
            event_read.en.eq(Mux(group_start, count != 0, accumulating & (issue < count))),
            # A row is read once for the run of events at its index (sorted: once a tile).
            weight_read.addr.eq(Cat(group, stored.index) if self.group_bits else stored.index),
            weight_read.en.eq(accumulating & fetched & new_row),
            initial_read.addr.eq(group), initial_read.en.eq(group_start),
            result.addr.eq(store_addr), result.en.eq(fsm.ongoing("Store")),
            result.data.eq(Cat(self._levels(storing))),
        ]
        with m.If(fsm.ongoing("Store")):
            m.d.sync += words.eq(words + 1)
        with m.If(read_out):
            m.d.sync += words.eq(0)
        return m

    def _read_out_tiles(self, m, read, words, active):
        """A computed tile's output words, token by token (word t * G + g): each word's
        nonzero levels as events, one a cycle (the lowest lane first), a ``last`` beat after a
        token's G words. Returns the signal that the tile is sent."""
        lanes, groups, level_bits = self.lanes, self.groups, self.act_bits + 1
        output = OutputRegister(m, self.o_stream)
        addr = Signal.like(words)                     # next word to fetch
        group = Signal(range(groups))                 # its group within its token
        next_base, base = Signal(range(self.outputs)), Signal(range(self.outputs))   # group * lanes
        held, fresh, ends_token = Signal(), Signal(), Signal()
        pending, mask = Signal(lanes), Signal(lanes)
        nonzero = Cat(read.data.word_select(i, level_bits) != 0 for i in range(lanes))
        m.d.comb += mask.eq(Mux(fresh, nonzero, pending))
        onehot, lane, level = lowest_set(m, mask, read.data, level_bits, "out")
        fetch = active & ~held & (addr != words)
        m.d.comb += [read.addr.eq(addr), read.en.eq(fetch)]
        with m.If(fetch):
            m.d.sync += [addr.eq(addr + 1), held.eq(1), fresh.eq(1), ends_token.eq(group == groups - 1),
                         base.eq(next_base), group.eq(Mux(group == groups - 1, 0, group + 1)),
                         next_base.eq(Mux(group == groups - 1, 0, next_base + lanes))]
        with m.If(held & output.free):
            with m.If(mask != 0):
                index = self.output_layout["index"].shape
                output.load(Cat((base + lane)[:index.width], level, Const(0, 1)))
                m.d.sync += [pending.eq(mask & ~onehot), fresh.eq(0)]
            with m.Else():
                with m.If(ends_token):
                    output.load(self.output_layout.const({"last": 1}).as_value())
                m.d.sync += [held.eq(0), fresh.eq(0)]
        done = Signal()
        m.d.comb += done.eq(active & ~held & (addr == words))
        with m.If(done):
            m.d.sync += [addr.eq(0), group.eq(0), next_base.eq(0)]
        return done

    def _operand(self, word, lane, level, negated):
        """w * level for one lane: w selects +level, -level (or nothing)."""
        if self.weight_kind == "binary":
            return Mux(word[lane], level, negated)
        nonzero, negative = word[2 * lane], word[2 * lane + 1]
        return Mux(nonzero, Mux(negative, negated, level), 0)

    def _update(self, membrane, word, lane, level, negated):
        """membrane + w * level for one lane."""
        return (membrane + self._operand(word, lane, level, negated))[:self.membrane_shape.width]

    def _drain_datapath(self, m) -> dict:
        """The drain's registers and the lowest pending lane, found by a one-hot and OR trees
        (log depth, no priority chain)."""
        lanes, level_bits = self.lanes, self.act_bits + 1
        d = {"base": Signal(range(self.outputs)),             # group * lanes, by adds
             "levels": Signal(lanes * level_bits),
             "pending": Signal(lanes),                        # lanes with an unsent level
             "onehot": Signal(lanes), "lane": Signal(range(lanes)), "chosen": Signal(level_bits),
             "output": OutputRegister(m, self.o_stream), "out": Signal(self.output_layout)}
        pending, onehot, out = d["pending"], d["onehot"], d["out"]
        m.d.comb += [onehot.eq(pending & (~pending + 1)),
                     d["lane"].eq(or_tree([Mux(onehot[i], i, 0) for i in range(lanes)])),
                     d["chosen"].eq(or_tree([Mux(onehot[i], d["levels"].word_select(i, level_bits), 0)
                                              for i in range(lanes)])),
                     out.index.eq(d["base"] + d["lane"]), out.level.eq(d["chosen"].as_signed())]
        return d

    def _levels(self, word) -> list:
        """The output level of each lane's membrane: clamp(v >> threshold_shift, lo, hi)."""
        vw, level_bits = self.membrane_shape.width, self.act_bits + 1
        lo, hi = level_range(self.act_bits, self.output_signed)
        found = []
        for i in range(self.lanes):
            v = word.word_select(i, vw).as_signed() >> self.threshold_shift
            found.append(Mux(v < lo, lo, Mux(v > hi, hi, v))[:level_bits])
        return found

