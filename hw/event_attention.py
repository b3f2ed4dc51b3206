"""Event-driven self-attention: Q events x K levels, PTsoftmax, nonzero probabilities x V."""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sorbet_hw.hw import ptsoftmax
from sorbet_hw.hw.block import Block, Stream
from sorbet_hw.hw.events import EventCoding, event_layout
from sorbet_hw.hw.plumbing import OutputRegister, lowest_set, or_tree, strided_increment
from sorbet_hw.hw.ptsoftmax import PTSoftmax
from sorbet_hw.hw.spiking_attention import softmax_params
from sorbet_hw.model.event_attention import PARAMS, event_attention
from sorbet_hw.model.event_if_layer import level_range
from sorbet_hw.model.params import signed_width

__all__ = ["EventAttention", "BLOCK"]


def _events(direction):
    vector = ("tokens", "heads * head_dim") if direction is In else ()
    return Stream(direction, lambda p: event_layout(p.heads * p.head_dim, p.act_bits + 1), vector=vector,
                  coding=EventCoding(lambda p: level_range(p.act_bits, True)))


BLOCK = Block(
    "event_attention", "self-attention of a sentence on zero-silent signed events: Q events x "
    "K levels, PTsoftmax, nonzero probabilities x V levels",
    params=PARAMS,
    ports={"q_stream": _events(In), "k_stream": _events(In), "v_stream": _events(In),
           "o_stream": _events(Out)},
    reference=event_attention,
    rules=(lambda p: ptsoftmax.BLOCK.check(softmax_params(p)),))


@BLOCK.generates
class EventAttention(wiring.Component):
    """Self-attention of one sentence on zero-silent signed events, as
    :func:`model.event_attention.event_attention`.

    Parameters
    ----------
    heads, tokens, head_dim, act_bits, score_left_shift, score_frac_bits, out_frac_bits, rounding, context_shift
        As :class:`hw.spiking_attention.SpikingAttention`'s (no time steps: events have no
        window); levels are signed, -2**(b-1) .. 2**(b-1) - 1.

    Ports
    -----
    q_stream, k_stream, v_stream : In(stream.Signature(event_layout(H, b + 1)))
        The sentence's query, key and value events (:mod:`hw.events`, H = heads * d): per
        token its nonzero levels in channel order, then a ``last`` beat; the three streams
        in any interleaving until all n tokens are in.
    o_stream : Out(stream.Signature(event_layout(H, b + 1)))
        The context, the same way: per token its nonzero levels, then ``last``.

    Architecture, latency and throughput
    ------------------------------------
    Loading. Query and value events fill rows of d levels, one per (token, head), in
    memories of n * heads words: a token of E events costs E + heads + 1 cycles (each head's
    row is written once, zeros included). Key events go to the *columns* of a memory of H
    words of n levels (a write of one level, byte-enable style), cleared in H cycles first:
    E + 1 cycles a token.

    Scores, per (query token i, head h), once all three are in: the query row is read, and
    each of its nonzero levels q (the one-hot of the lowest pending lane) reads the key
    column of its dimension, whose n key levels are then added to (or subtracted from) n
    accumulators |q| times: Sorbet's Q spikes x K counts on signed spikes, adds only. The n
    scores then go to PTsoftmax, one a cycle, through a register. 3 + n + sum over nonzero q
    of (|q| + 1) cycles.

    Contexts, concurrently, per row of n probabilities: a probability p = 2**-e (or zero)
    reads value row (j, h) and adds its d levels shifted left by P - e (times p) to d
    accumulators;
    a zero probability reads and adds nothing (p is an integer with P fractional bits). One probability a cycle; then the row's d
    levels clamp(floor(c / 2**theta + 1/2)) leave as events, one a cycle for each
    nonzero one, and after the last head a ``last`` beat: 3 + n + nonzero outputs cycles.

    All memories have synchronous read ports (block RAM); no word is read in the cycle it
    is written (the loaders write before the scores start). One sentence at a time.
    """

    def __init__(self, **params):
        p = BLOCK.check(params)
        self.heads, self.tokens, self.head_dim, self.act_bits = p.heads, p.tokens, p.head_dim, p.act_bits
        self.score_left_shift, self.score_frac_bits = p.score_left_shift, p.score_frac_bits
        self.out_frac_bits, self.rounding, self.context_shift = p.out_frac_bits, p.rounding, p.context_shift
        self.softmax_params = softmax_params(p)
        self.layout = event_layout(p.heads * p.head_dim, p.act_bits + 1)
        super().__init__(BLOCK.signature(p))

    @property
    def width(self) -> int:
        return self.heads * self.head_dim

    def elaborate(self, platform):
        m = Module()
        b, d, n, heads = self.act_bits, self.head_dim, self.tokens, self.heads
        m.submodules.q_rows = q_rows = Memory(shape=unsigned(d * b), depth=n * heads, init=[])
        m.submodules.v_rows = v_rows = Memory(shape=unsigned(d * b), depth=n * heads, init=[])
        m.submodules.k_columns = k_columns = Memory(shape=unsigned(n * b), depth=self.width, init=[])
        m.submodules.ptsoftmax = softmax = PTSoftmax(**self.softmax_params)
        sentence_done = Signal()
        loaded = [self._row_loader(m, self.q_stream, q_rows, sentence_done, "q"),
                  self._row_loader(m, self.v_stream, v_rows, sentence_done, "v"),
                  self._column_loader(m, k_columns, sentence_done)]
        all_loaded = Signal()
        m.d.comb += all_loaded.eq(Cat(loaded).all())
        self._scores(m, q_rows, k_columns, softmax, all_loaded, sentence_done)
        self._contexts(m, v_rows, softmax, sentence_done)
        return m

    # -- loading -----------------------------------------------------------------------
    def _row_loader(self, m, source, memory, restart, name):
        """Events into rows of d levels, one row per (token, head) at token * heads + head."""
        b, d, n, heads = self.act_bits, self.head_dim, self.tokens, self.heads
        event = data.View(self.layout, source.payload)
        write = memory.write_port()
        row = Signal(range(n * heads), name=f"{name}_row")       # token * heads, by adds
        head = Signal(range(heads), name=f"{name}_head")
        base = Signal(range(self.width + d), name=f"{name}_base")  # head * d, by adds
        levels = Signal(d * b, name=f"{name}_levels")
        full = Signal(name=f"{name}_full")
        lane = Signal(range(self.width + d), name=f"{name}_offset")
        # An event past this head's channels (or the token's end) first writes the row out.
        flush = Signal(name=f"{name}_flush")
        last_head = head == heads - 1
        m.d.comb += [lane.eq(event.index - base),
                     flush.eq(source.valid & ~full & (event.last | ((event.index >= base + d) & ~last_head))),
                     source.ready.eq(~full & (~flush | (event.last & last_head))),
                     write.addr.eq(row + head), write.data.eq(levels), write.en.eq(flush)]
        with m.If(source.valid & source.ready & ~event.last):
            for i in range(d):
                with m.If(lane == i):
                    m.d.sync += levels.word_select(i, b).eq(event.level[:b])
        with m.If(flush):
            m.d.sync += levels.eq(0)
            with m.If(last_head):
                m.d.sync += [head.eq(0), base.eq(0), row.eq(strided_increment(row, heads, n))]
                with m.If(row == (n - 1) * heads):
                    m.d.sync += full.eq(1)
            with m.Else():
                m.d.sync += [head.eq(head + 1), base.eq(base + d)]
        with m.If(restart):
            m.d.sync += full.eq(0)
        return full

    def _column_loader(self, m, memory, restart):
        """Key events into columns: channel c's word holds the n tokens' levels, token j at
        lane j. The words are cleared first, so that a silent channel reads zero."""
        b, n = self.act_bits, self.tokens
        event = data.View(self.layout, self.k_stream.payload)
        write = memory.write_port(granularity=b)
        cleared, full = Signal(name="k_cleared"), Signal(name="k_full")
        clear = Signal(range(self.width), name="k_clear")
        token = Signal(range(n), name="k_token")
        accept = self.k_stream.valid & self.k_stream.ready
        m.d.comb += [self.k_stream.ready.eq(cleared & ~full),
                     write.addr.eq(Mux(cleared, event.index, clear)),
                     write.data.eq(Mux(cleared, Cat([event.level[:b]] * n), 0)),
                     write.en.eq(Mux(cleared, Mux(accept & ~event.last, Const(1, n) << token, 0), (1 << n) - 1))]
        with m.If(~cleared):
            m.d.sync += clear.eq(clear + 1)
            with m.If(clear == self.width - 1):
                m.d.sync += [clear.eq(0), cleared.eq(1)]
        with m.If(accept & event.last):
            m.d.sync += token.eq(token + 1)
            with m.If(token == n - 1):
                m.d.sync += [token.eq(0), full.eq(1)]
        with m.If(restart):
            m.d.sync += [full.eq(0), cleared.eq(0)]
        return full

    # -- scores ------------------------------------------------------------------------
    def _scores(self, m, q_rows, k_columns, softmax, run, restart):
        """Producer: per (token, head), the n scores of the query's events, into PTsoftmax."""
        b, d, n, heads = self.act_bits, self.head_dim, self.tokens, self.heads
        off = 1 << (b - 1)
        q_read, k_read = q_rows.read_port(), k_columns.read_port()
        acc_shape = signed(signed_width(-d * off * off, d * off * off))
        accs = [Signal(acc_shape, name=f"score{j}") for j in range(n)]
        row = Signal(range(n * heads), name="score_row")
        base = Signal(range(self.width), name="score_base")    # head * d, by adds
        levels = Signal(d * b, name="query_levels")
        pending = Signal(d, name="query_pending")
        remaining = Signal(range(off + 1))
        negative = Signal()
        push = Signal(n, name="push_onehot")
        done = Signal(name="scores_done")
        onehot, lane, level = lowest_set(m, pending, levels, b, "query")
        level = level.as_signed()
        keys = [k_read.data.word_select(j, b).as_signed() for j in range(n)]
        shifted = Signal(softmax.i_stream.payload.shape())
        m.d.comb += shifted.eq(or_tree([Mux(push[j], accs[j], 0) for j in range(n)]) << self.score_left_shift)
        # The scores reach PTsoftmax from a register: the select over n accumulators and
        # PTsoftmax's ceiling and compare would otherwise be one path.
        to_softmax = OutputRegister(m, softmax.i_stream)
        with m.FSM(name="scores") as fsm:
            with m.State("Idle"):
                with m.If(run & ~done):
                    m.next = "Read"
            with m.State("Read"):
                m.next = "Latch"
            with m.State("Latch"):
                m.d.sync += [levels.eq(q_read.data), *[a.eq(0) for a in accs],
                             pending.eq(Cat(q_read.data.word_select(i, b) != 0 for i in range(d)))]
                m.next = "Pick"
            with m.State("Pick"):
                with m.If(pending != 0):
                    m.d.sync += [pending.eq(pending & ~onehot), negative.eq(level < 0),
                                 remaining.eq(Mux(level < 0, -level, level) - 1)]
                    m.next = "Add"
                with m.Else():
                    m.d.sync += push.eq(1)
                    m.next = "Push"
            with m.State("Add"):
                m.d.sync += [a.eq(a + Mux(negative, -k, k)) for a, k in zip(accs, keys)]
                m.d.sync += remaining.eq(remaining - 1)
                with m.If(remaining == 0):
                    m.next = "Pick"
            with m.State("Push"):
                with m.If(to_softmax.free):
                    to_softmax.load(shifted)
                    m.d.sync += push.eq(push << 1)
                    with m.If(push[n - 1]):
                        m.d.sync += [row.eq(row + 1), base.eq(Mux(base == self.width - d, 0, base + d))]
                        with m.If(row == n * heads - 1):
                            m.d.sync += [row.eq(0), done.eq(1)]
                            m.next = "Idle"
                        with m.Else():
                            m.next = "Read"
        with m.If(restart):
            m.d.sync += done.eq(0)
        m.d.comb += [q_read.addr.eq(row), q_read.en.eq(fsm.ongoing("Read")),
                     k_read.addr.eq(base + lane), k_read.en.eq(fsm.ongoing("Pick") & (pending != 0))]

    # -- contexts ----------------------------------------------------------------------
    def _contexts(self, m, v_rows, softmax, sentence_done):
        """Consumer: each nonzero probability adds a value row, shifted; then the row's
        nonzero context levels leave as events."""
        b, d, n, heads = self.act_bits, self.head_dim, self.tokens, self.heads
        P, theta = self.out_frac_bits, self.context_shift
        off = 1 << (b - 1)
        v_read = v_rows.read_port()
        ctx_shape = signed(signed_width(-n * off << P, n * off << P))
        contexts = [Signal(ctx_shape, name=f"context{lane}") for lane in range(d)]
        key = Signal(range(n * heads), name="key_row")         # j * heads, by adds
        head = Signal(range(heads), name="context_head")
        base = Signal(range(self.width), name="context_base")  # head * d, by adds
        staged = Signal()                                      # v_read.data is to be added
        shift = Signal(range(P + 1))
        p = softmax.o_stream.payload
        exponent = Signal(range(P + 1))     # p = 2**exponent in units of 2**-P
        m.d.comb += exponent.eq(or_tree([Mux(p[e], e, 0) for e in range(P + 1)]))
        accept = softmax.o_stream.valid & softmax.o_stream.ready
        m.d.sync += staged.eq(accept & (p != 0))
        with m.If(accept):
            m.d.sync += [shift.eq(exponent), key.eq(strided_increment(key, heads, n))]
        with m.If(staged):
            m.d.sync += [c.eq(c + (v_read.data.word_select(i, b).as_signed() << shift))
                         for i, c in enumerate(contexts)]

        half = (1 << theta) >> 1
        found = []
        for c in contexts:
            level = Signal(signed(max(ctx_shape.width + 1 - theta, b + 2)))
            m.d.comb += level.eq((c + half) >> theta)
            found.append(Mux(level < -off, -off, Mux(level > off - 1, off - 1, level))[:b + 1])
        pending = Signal(d, name="context_pending")
        levels = Signal(d * (b + 1), name="context_levels")
        onehot, lane, chosen = lowest_set(m, pending, levels, b + 1, "context")
        output = OutputRegister(m, self.o_stream)
        out = Signal(self.layout)
        m.d.comb += [out.index.eq(base + lane), out.level.eq(chosen.as_signed())]
        last_key = key == (n - 1) * heads
        with m.FSM(name="contexts") as fsm:
            with m.State("Accumulate"):
                with m.If(accept & last_key):
                    m.next = "Settle"
            with m.State("Settle"):                     # the row's last add
                m.next = "Levels"
            with m.State("Levels"):
                m.d.sync += [levels.eq(Cat(found)), pending.eq(Cat(f != 0 for f in found)),
                             *[c.eq(0) for c in contexts]]
                m.next = "Emit"
            with m.State("Emit"):
                with m.If(pending != 0):
                    with m.If(output.free):
                        output.load(out.as_value())
                        m.d.sync += pending.eq(pending & ~onehot)
                with m.Elif(head != heads - 1):
                    m.d.sync += [head.eq(head + 1), base.eq(base + d)]
                    m.next = "Accumulate"
                with m.Elif(output.free):
                    output.load(self.layout.const({"last": 1}).as_value())
                    m.d.sync += [head.eq(0), base.eq(0)]
                    m.next = "Token end"
            with m.State("Token end"):
                m.next = "Accumulate"
        token = Signal(range(n), name="context_token")
        with m.If(fsm.ongoing("Token end")):
            m.d.sync += token.eq(Mux(token == n - 1, 0, token + 1))
        m.d.comb += [sentence_done.eq(fsm.ongoing("Token end") & (token == n - 1)),
                     softmax.o_stream.ready.eq(fsm.ongoing("Accumulate")),
                     v_read.addr.eq(key + head), v_read.en.eq(accept & (p != 0))]
