"""Spiking self-attention: Q spikes x K counts, PTsoftmax, V spikes x power-of-two weights."""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sorbet_hw.hw import ptsoftmax
from sorbet_hw.hw.block import Block, Stream
from sorbet_hw.hw.plumbing import adder_tree, strided_increment, wrapped_increment
from sorbet_hw.hw.ptsoftmax import PTSoftmax
from sorbet_hw.model.ptsoftmax import score_width
from sorbet_hw.model.params import signed_width
from sorbet_hw.model.spiking_attention import PARAMS, spiking_attention

__all__ = ["SpikingAttention", "BLOCK", "softmax_params"]


def softmax_params(p) -> dict:
    """The PTsoftmax inside an attention block: rows of one query's scores over the sentence."""
    return {"row_length": p.tokens, "frac_bits": p.score_frac_bits, "out_frac_bits": p.out_frac_bits,
            "rounding": p.rounding,
            "score_width": score_width(p.head_dim, p.act_bits, p.score_left_shift, p.score_frac_bits)}


_level = Stream(In, lambda p: unsigned(p.act_bits), vector=("tokens", "heads * head_dim"))

BLOCK = Block(
    "spiking_attention", "self-attention of a sentence on spikes: Q spikes x K counts, "
    "PTsoftmax, V spikes x probabilities",
    params=PARAMS,
    ports={"q_stream": _level, "k_stream": _level, "v_stream": _level,
           "o_stream": Stream(Out, lambda p: unsigned(p.act_bits))},
    reference=spiking_attention,
    rules=(lambda p: ptsoftmax.BLOCK.check(softmax_params(p)),))


@BLOCK.generates
class SpikingAttention(wiring.Component):
    """Self-attention of one sentence on activation levels carried as spike trains, as
    :func:`model.spiking_attention.spiking_attention` defines it.

    Per head h, query token i and key token j (levels q, k, v in 0 .. 2**b - 1, offset
    off = 2**(b-1), head dimension d):

    - score s_ij = sum_d (q_id - off)(k_jd - off): one cycle loads -off * sum_d (k_jd - off),
      then each of the T steps adds sum_d (k_jd - off) over the query neurons that spike at
      that step (*Q spikes x K counts*): adds of 4-bit values, no multiplier;
    - p_ij = PTsoftmax over j of s_ij << score_left_shift (a power of two, or zero);
    - context membrane of neuron (i, d): each V spike of (j, d) adds p_ij (*V spikes x
      probabilities*, T steps per key), plus the bias (off << theta) - off * sum_j p_ij; the
      level is clamp(floor(membrane / 2**theta + 1/2), 0, 2**b - 1), theta = context_shift.

    The choice: attention works on spike *trains* of Q and V against stored *counts* of K and
    power-of-two probabilities, so it needs d adders and no multiplier, at the cost of T + 2
    cycles per score and T per probability (a counts x counts design would need d 4 x 4-bit
    multipliers and one cycle each).

    Parameters
    ----------
    heads, tokens, head_dim : int
        Heads, sentence length n (PTsoftmax rows are n long) and dimensions per head d.
    steps, act_bits : int
        Time steps T and level width b.
    score_left_shift, score_frac_bits, out_frac_bits, rounding
        PTsoftmax's alignment and parameters (:meth:`IntegerStudent.attention_params`).
    context_shift : int
        theta, the context neurons' threshold shift.

    Ports
    -----
    q_stream, k_stream, v_stream : In(stream.Signature(unsigned(act_bits)))
        The sentence's query, key and value levels, token after token, channel order
        (n * heads * d each); accepted in any interleaving until all are in.
    o_stream : Out(stream.Signature(unsigned(act_bits)))
        Context levels, same order, once the whole sentence is computed.

    Latency and throughput: heads * n * n scores of T + 2 cycles each (the probabilities are
    consumed concurrently, T cycles each), then n * heads * d cycles to emit; one sentence
    at a time.
    """

    def __init__(self, **params):
        p = BLOCK.check(params)
        self.score_width = softmax_params(p)["score_width"]
        self.heads, self.tokens, self.head_dim = p.heads, p.tokens, p.head_dim
        self.steps, self.act_bits = p.steps, p.act_bits
        self.score_left_shift, self.score_frac_bits = p.score_left_shift, p.score_frac_bits
        self.out_frac_bits, self.rounding, self.context_shift = p.out_frac_bits, p.rounding, p.context_shift
        super().__init__(BLOCK.signature(p))

    @property
    def elements(self) -> int:
        return self.tokens * self.heads * self.head_dim

    def elaborate(self, platform):
        m = Module()
        b, d, n, heads = self.act_bits, self.head_dim, self.tokens, self.heads
        word = unsigned(d * b)              # one token's levels in one head
        depth = n * heads                   # address: token * heads + head

        # -- loading: each input stream fills its memory, granule by granule ------------
        memories, loaded = {}, []
        for name in ("q", "k", "v"):
            m.submodules[f"{name}_memory"] = mem = Memory(shape=word, depth=depth, init=[])
            memories[name] = mem
            port = mem.write_port(granularity=b)
            source = getattr(self, f"{name}_stream")
            address, lane = Signal(range(depth), name=f"{name}_address"), Signal(range(d), name=f"{name}_lane")
            full = Signal(name=f"{name}_full")
            loaded.append(full)
            m.d.comb += [source.ready.eq(~full),
                         port.addr.eq(address), port.data.eq(Cat([source.payload] * d)),
                         port.en.eq(Mux(source.valid & ~full, 1 << lane, 0))]
            with m.If(source.valid & source.ready):
                with m.If(lane == d - 1):
                    m.d.sync += [lane.eq(0), address.eq(address + 1)]
                    with m.If(address == depth - 1):
                        m.d.sync += [address.eq(0), full.eq(1)]
                with m.Else():
                    m.d.sync += lane.eq(lane + 1)
        all_loaded = Signal()
        m.d.comb += all_loaded.eq(Cat(loaded).all())

        m.submodules.ptsoftmax = softmax = PTSoftmax(
            row_length=n, score_width=self.score_width, frac_bits=self.score_frac_bits,
            out_frac_bits=self.out_frac_bits, rounding=self.rounding)
        m.submodules.c_memory = c_mem = Memory(shape=word, depth=depth, init=[])
        scores_done, rows_done = Signal(), Signal()
        self._scores(m, memories, softmax, all_loaded & ~scores_done, scores_done)
        self._contexts(m, memories["v"], c_mem, softmax, rows_done)
        self._emit(m, c_mem, rows_done, reset=[*loaded, scores_done])
        return m

    @staticmethod
    def _levels(word, b, d):
        return [word.word_select(i, b) for i in range(d)]

    def _scores(self, m, memories, softmax, run, done):
        """Producer: scores of (head, query i, key j), j fastest, into PTsoftmax."""
        b, d, n, heads, T = self.act_bits, self.head_dim, self.tokens, self.heads, self.steps
        off = 1 << (b - 1)
        q_read = memories["q"].read_port(domain="comb")
        k_read = memories["k"].read_port(domain="comb")
        # Token counters step by `heads`: the memory address token * heads + head is then a sum.
        head = Signal(range(heads))
        i, j = Signal(range(n * heads), name="i_row"), Signal(range(n * heads), name="j_row")
        step = Signal(range(T))
        phase = Signal(range(3))                # 0: bias, 1: steps, 2: push
        acc_shape = signed(signed_width(-d * off * off, d * off * off) + 1)
        acc = Signal(acc_shape)
        m.d.comb += [q_read.addr.eq(i + head), k_read.addr.eq(j + head)]
        bias_cycle = phase == 0
        terms = [Mux(bias_cycle | (q > step), (k - off).as_signed(), 0)
                 for q, k in zip(self._levels(q_read.data, b, d), self._levels(k_read.data, b, d))]
        tree = adder_tree(terms)
        m.d.comb += [softmax.i_stream.valid.eq(run & (phase == 2)),
                     softmax.i_stream.payload.eq(acc << self.score_left_shift)]
        with m.If(run):
            with m.Switch(phase):
                with m.Case(0):
                    m.d.sync += [acc.eq(-(tree << (b - 1))), phase.eq(1)]
                with m.Case(1):
                    m.d.sync += acc.eq(acc + tree)
                    with m.If(step == T - 1):
                        m.d.sync += [step.eq(0), phase.eq(2)]
                    with m.Else():
                        m.d.sync += step.eq(step + 1)
                with m.Case(2):
                    with m.If(softmax.i_stream.ready):
                        m.d.sync += [phase.eq(0), j.eq(strided_increment(j, heads, n))]
                        with m.If(j == (n - 1) * heads):
                            m.d.sync += i.eq(strided_increment(i, heads, n))
                            with m.If(i == (n - 1) * heads):
                                m.d.sync += head.eq(wrapped_increment(head, heads))
                                with m.If(head == heads - 1):
                                    m.d.sync += done.eq(1)

    def _contexts(self, m, v_mem, c_mem, softmax, rows_done):
        """Consumer: each probability p_ij, T steps of V spikes, then the context levels."""
        b, d, n, heads, T = self.act_bits, self.head_dim, self.tokens, self.heads, self.steps
        P, theta = self.out_frac_bits, self.context_shift
        off, q_max = 1 << (b - 1), (1 << b) - 1
        v_read = v_mem.read_port(domain="comb")
        c_write = c_mem.write_port()
        # Token counters step by `heads`: the memory address token * heads + head is then a sum.
        head = Signal(range(heads))
        i, j = Signal(range(n * heads), name="i_row"), Signal(range(n * heads), name="j_row")
        step = Signal(range(T))
        firing = Signal()
        p = softmax.o_stream.payload
        ctx_shape = unsigned((n * (1 << P) * q_max * 2).bit_length())
        sum_shape = unsigned((n * (1 << P) * 2).bit_length())
        contexts = [Signal(ctx_shape, name=f"context{lane}") for lane in range(d)]
        p_sum = Signal(sum_shape)
        m.d.comb += v_read.addr.eq(j + head)
        spikes = [v > step for v in self._levels(v_read.data, b, d)]
        m.d.comb += softmax.o_stream.ready.eq(~firing & (step == T - 1))
        with m.If(softmax.o_stream.valid & ~firing):
            m.d.sync += [c.eq(c + Mux(s, p, 0)) for c, s in zip(contexts, spikes)]
            with m.If(step == T - 1):
                m.d.sync += [step.eq(0), p_sum.eq(p_sum + p), j.eq(strided_increment(j, heads, n))]
                with m.If(j == (n - 1) * heads):
                    m.d.sync += firing.eq(1)
            with m.Else():
                m.d.sync += step.eq(step + 1)

        # Fire: level = clamp((context - off * sum p + (off << theta) + half) >> theta).
        membrane_shape = signed(max(ctx_shape.width, sum_shape.width + b, b + theta) + 3)
        bias = Signal(membrane_shape)
        m.d.comb += bias.eq((off << theta) + ((1 << theta) >> 1) - (p_sum << (b - 1)))
        levels = []
        for c in contexts:
            level = Signal(signed(membrane_shape.width - theta + 1))
            m.d.comb += level.eq((c + bias) >> theta)
            levels.append(Mux(level < 0, 0, Mux(level > q_max, q_max, level))[:b])
        m.d.comb += [c_write.addr.eq(i + head), c_write.data.eq(Cat(levels)),
                     c_write.en.eq(firing)]
        with m.If(firing):
            m.d.sync += [firing.eq(0), p_sum.eq(0), *[c.eq(0) for c in contexts],
                         i.eq(strided_increment(i, heads, n))]
            with m.If(i == (n - 1) * heads):
                m.d.sync += head.eq(wrapped_increment(head, heads))
                with m.If(head == heads - 1):
                    m.d.sync += rows_done.eq(1)

    def _emit(self, m, c_mem, rows_done, reset):
        """Context levels out, token-major; the last one frees the memories for a sentence."""
        b, d, n, heads = self.act_bits, self.head_dim, self.tokens, self.heads
        read = c_mem.read_port(domain="comb")
        address, lane = Signal(range(n * heads)), Signal(range(d))
        m.d.comb += [read.addr.eq(address), self.o_stream.valid.eq(rows_done),
                     self.o_stream.payload.eq(read.data.word_select(lane, b))]
        with m.If(self.o_stream.valid & self.o_stream.ready):
            with m.If(lane == d - 1):
                m.d.sync += [lane.eq(0), address.eq(address + 1)]
                with m.If(address == n * heads - 1):
                    m.d.sync += [address.eq(0), rows_done.eq(0), *[r.eq(0) for r in reset]]
            with m.Else():
                m.d.sync += lane.eq(lane + 1)
