"""Encoder layer generator: a whole spiking transformer layer of the student."""
from __future__ import annotations

import numpy as np
from amaranth import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sorbet_hw.hw.block import Block, Stream
from sorbet_hw.hw.plumbing import OutputRegister, wrapped_increment
from sorbet_hw.hw.bspn import BSPN
from sorbet_hw.hw.event_attention import EventAttention
from sorbet_hw.hw.event_counter import EventCounter
from sorbet_hw.hw.event_encoder import EventEncoder
from sorbet_hw.hw.event_if_layer import EventIFLayer
from sorbet_hw.hw.if_layer import IFLayer
from sorbet_hw.hw.rate_encoder import RateEncoder
from sorbet_hw.hw.spike_counter import SpikeCounter
from sorbet_hw.hw.spiking_attention import SpikingAttention
from sorbet_hw.model import event_attention, event_if_layer
from sorbet_hw.model.encoder_layer import PARAMS, encoder_layer, layer_student, projection_site
from sorbet_hw.model.event_if_layer import level_range
from sorbet_hw.model.ptsoftmax import score_width
from sorbet_hw.model.integer_model import LINEARS
from sorbet_hw.model.params import ParameterError, Site, check_divides, check_int, from_model

__all__ = ["EncoderLayer", "BLOCK", "default_parallelism"]


def default_parallelism(hidden: int, ffn: int) -> int:
    """Default lanes and inputs a cycle: 32, or the largest divisor of 32 that divides both
    the hidden and the FFN size."""
    return int(np.gcd(32, np.gcd(hidden, ffn)))


def _complete(params: dict) -> dict:
    """Without weights: the demo layer of (hidden, heads, ffn, tokens, seed)."""
    from sorbet_hw.model.encoder_layer import demo_params
    params = dict(params)
    shape = {k: params.pop(k) for k in ("hidden", "ffn", "seed") if k in params}
    if params.get("query_weights") is None:
        demo = demo_params(hidden=shape.get("hidden", 32), ffn=shape.get("ffn", 64),
                           heads=params.get("heads") or 2, tokens=params.get("tokens") or 4,
                           weight_kind=params.get("weight_kind") or "binary", seed=shape.get("seed", 0))
        params = {**demo, **{k: v for k, v in params.items() if v is not None}}
    parallelism = default_parallelism(*np.shape(params["intermediate_weights"]))
    for name in ("lanes", "inputs_per_cycle"):
        if params.get(name) is None:
            params[name] = parallelism
    return params


BLOCK = Block(
    "encoder_layer", "a whole spiking encoder layer of the student (demo weights from hidden, "
    "ffn, heads, tokens and seed if none are given)",
    params=PARAMS,
    ports={"i_stream": Stream(In, lambda p: signed(p.norm_out_width), vector=("tokens", "hidden")),
           "o_stream": Stream(Out, lambda p: signed(p.norm_out_width))},
    reference=lambda inputs, **params: encoder_layer(inputs, params),
    derive=lambda p: {"hidden": np.shape(p["query_weights"])[0],
                      "ffn": np.shape(p["intermediate_weights"])[1]},
    complete=_complete, extra_params=("hidden", "ffn", "seed"), composite=True)


@BLOCK.generates
class EncoderLayer(wiring.Component):
    """One encoder layer of the spiking student, as :func:`model.encoder_layer.encoder_layer`
    (that is :meth:`model.integer_model.IntegerStudent.layer`), for sentences of ``tokens``
    tokens.

    Parameters
    ----------
    **params
        The layer's flat parameters (:mod:`model.encoder_layer`: weights, biases and
        threshold shifts of the six linears, both norms' shifts and offsets, the exponents,
        heads, tokens, T, widths), held in on-chip ROMs.
    engine : "event" or "if"
        The projections and attention: event-driven on zero-silent signed events (the
        default) or dense IF on offset spike trains. The arithmetic is the same layer.
    lanes, inputs_per_cycle : int
        Parallelism of every projection: output neurons updated together, and (dense IF
        engine only) input spikes added per neuron per cycle. Each must divide both the
        hidden and the FFN size. Defaults: 32 and 32 (or the largest common divisor below).

    Ports
    -----
    i_stream : In(stream.Signature(signed(norm_out_width)))
        The residual stream entering the layer: ``tokens`` x H values, token after token.
    o_stream : Out(stream.Signature(signed(norm_out_width)))
        The residual stream leaving it, same order.

    Architecture
    ------------
    A chain of streams, one sentence at a time. On the event engine::

        in -> levels -> EventEncoder -> EventIF(Q), EventIF(K), EventIF(V) -> EventAttention
           -> EventIF(O) -> EventCounter -> + residual -> BSPN -> levels
           -> EventEncoder -> EventIF(FFN in) -> EventIF(FFN out) -> EventCounter -> + residual
           -> BSPN -> out

    A signed level (zero sends nothing) travels as one graded event; Q, K, V and the context
    go from block to block as events (:mod:`hw.event_if_layer`, :mod:`hw.event_attention`),
    membranes in block RAM. On the dense IF engine::

        in -> levels -> RateEncoder -> IF(Q), IF(K), IF(V) -> SpikeCounters -> SpikingAttention
           -> RateEncoder -> IF(O) -> SpikeCounter -> + residual -> BSPN -> levels
           -> RateEncoder -> IF(FFN in) -> IF(FFN out) -> SpikeCounter -> + residual -> BSPN -> out

    every projection an accumulate-only IF layer over T steps, the residual stream encoded
    into offset spike trains (level = clamp(floor(h / 2**theta + 1/2) + offset)). Either
    way weights sit in ROMs and the residual inputs wait in memories of tokens x H entries,
    read synchronously, the sum into each norm leaving from a register.

    Latency and throughput: one sentence at a time (a new one is accepted once the previous
    one has left); :meth:`cycles_estimate` bounds the total. Event engine: per token and
    projection E + (M / lanes) * (E + 5) + nonzero outputs cycles for E nonzero inputs (the
    measured figure of the shipped layer 0 is in docs/results.md). Dense IF engine:
    T * (M / lanes) * (N / inputs_per_cycle + 1) cycles each per token, plus
    heads * tokens**2 * (T + 2) for the scores.
    """

    def __init__(self, **params):
        checked = BLOCK.check(params)
        lanes, inputs_per_cycle = checked.lanes, checked.inputs_per_cycle
        params = {k: v for k, v in checked.items() if k in BLOCK.defaults()
                  and k not in ("lanes", "inputs_per_cycle")}
        self.params = params
        model, layer = layer_student(params)
        self.model, self.layer = model, layer
        lin = layer.linears
        H, ffn = lin["intermediate"].weights.shape
        self.hidden, self.ffn, self.heads = H, ffn, model.heads
        self.tokens = check_int("tokens", int(params["tokens"]), 1, 512)
        self.steps = check_int("steps", int(params["steps"]), 1, 1024)
        self.act_bits, self.frac_bits = model.act_bits, model.frac_bits
        for name in LINEARS:
            n_in, n_out = lin[name].weights.shape
            want = {"query": (H, H), "key": (H, H), "value": (H, H), "attention_output": (H, H),
                    "intermediate": (H, ffn), "output": (ffn, H)}[name]
            if (n_in, n_out) != want:
                raise ParameterError(f"{name}_weights must have shape {want}, got {(n_in, n_out)}")
        common = int(np.gcd(H, ffn))
        self.engine = checked.engine
        self.lanes = default_parallelism(H, ffn) if lanes is None else lanes
        self.inputs_per_cycle = default_parallelism(H, ffn) if inputs_per_cycle is None else inputs_per_cycle
        for name, value in (("lanes", self.lanes), ("inputs_per_cycle", self.inputs_per_cycle)):
            check_int(name, value, 1, common)
            check_divides(name, value, "hidden size", H)
            check_divides(name, value, "FFN size", ffn)
        F_ = self.frac_bits
        self.input_shift = self._shift("input_exponent + norm_frac_bits", layer.input_exponent + F_)
        self.ffn_input_shift = self._shift("ffn_input_exponent + norm_frac_bits",
                                           layer.ffn_input_exponent + F_)
        self.attention_residual_shift = self._shift(
            "attention_output_exponent + norm_frac_bits", lin["attention_output"].exponent + F_)
        self.output_residual_shift = self._shift("output_exponent + norm_frac_bits",
                                                 lin["output"].exponent + F_)
        self.attention = model.attention_params(layer)
        self._check_blocks()
        super().__init__(BLOCK.signature(checked))

    @staticmethod
    def _shift(name: str, value: int) -> int:
        if value < 0:
            raise ParameterError(f"{name} = {value} must be >= 0 (a left shift in hardware)")
        return check_int(name, int(value), 0, 24)

    def _check_blocks(self) -> None:
        """Build every sub-block once so that a parameter out of range fails here."""
        for block in (self._projection("query"), self._attention(), self._norm("attention_norm")):
            block._MustUse__silence = True     # checked, not elaborated: no unused warning

    # -- sub-blocks: one of each engine ---------------------------------------------------
    def _projection(self, name: str):
        if self.engine == "event":
            site = projection_site(self.model, self.layer, name)
            return EventIFLayer(**from_model(event_if_layer.PARAMS, site, event_kind="graded",
                                             lanes=self.lanes))
        lin = self.layer.linears[name]
        return IFLayer(weights=lin.weights, bias=lin.bias, steps=self.steps,
                       threshold_shift=lin.threshold_shift, act_bits=self.act_bits,
                       weight_kind=self.model.config["weight_kind"], lanes=self.lanes,
                       inputs_per_cycle=self.inputs_per_cycle)

    def _attention(self):
        if self.engine == "event":
            site = Site(self.model, self.layer, tokens=self.tokens)
            return EventAttention(**from_model(event_attention.PARAMS, site))
        at, c = self.attention, self.model.config
        return SpikingAttention(heads=self.heads, tokens=self.tokens, head_dim=self.hidden // self.heads,
                                steps=self.steps, act_bits=self.act_bits,
                                score_left_shift=at["score_left_shift"],
                                score_frac_bits=at["frac_bits"],
                                out_frac_bits=int(c["softmax_out_frac_bits"]),
                                rounding=c["softmax_rounding"], context_shift=at["context_shift"])

    def _norm(self, name: str) -> BSPN:
        c, norm = self.model.config, self.layer.norms[name]
        return BSPN(channels=self.hidden, groups=int(c["norm_groups"]), in_width=norm.in_width,
                    norm_frac_bits=int(c["norm_frac_bits"]), out_width=int(c["norm_out_width"]),
                    gamma_shift=norm.gamma_shift, beta=norm.beta)

    def _encoder(self, width: int):
        if self.engine == "event":
            return EventEncoder(width=width, act_bits=self.act_bits, signed=True, event_kind="graded")
        return RateEncoder(width=width, steps=self.steps, level_bits=self.act_bits)

    def _counter(self, width: int):
        if self.engine == "event":
            return EventCounter(width=width, act_bits=self.act_bits, signed=True, event_kind="graded")
        return SpikeCounter(width=width, steps=self.steps, level_bits=self.act_bits)

    def cycles_estimate(self) -> int:
        """A bound on the cycles of one sentence with no output stall (the benchmark measures
        the real figure; this bounds the bench's timeout). Dense IF: the windows dominate,
        T * (M / lanes) * (N / inputs_per_cycle + 1) each. Event-driven: at worst every input
        level nonzero, N + (M / lanes) * (N + 5) + M per projection and token, and the
        attention's rows."""
        T, n, H, F = self.steps, self.tokens, self.hidden, self.ffn
        if self.engine == "event":
            window = lambda i, o: i + (o // self.lanes) * (i + 5) + o + 1  # noqa: E731
            d, off = H // self.heads, 1 << (self.act_bits - 1)
            attention = n * self.heads * (6 + 2 * n + (off + 2) * d) + n * H
        else:
            window = lambda i, o: T * (o // self.lanes) * (i // self.inputs_per_cycle + 1)  # noqa: E731
            attention = self.heads * n * n * (T + 2)
        per_token = 2 * window(H, H) + window(H, F) + window(F, H) + 4 * H + 3 * T
        return n * per_token + attention + n * H

    def memory_bits(self) -> dict:
        """Bits of on-chip memory by use: weight ROMs (the six projections; the event engine's
        rows padded to a power of two of lane groups), the sentence's activations (Q, K, V,
        context levels; both residual streams; the event engine's membranes, initial
        membranes and event buffers), and the blocks' row and group buffers and coefficient
        ROMs."""
        lin = self.layer.linears
        wbits = 1 if self.model.config["weight_kind"] == "binary" else 2
        n, H, b = self.tokens, self.hidden, self.act_bits
        out_width = int(self.model.config["norm_out_width"])
        in_width = self.layer.norms["attention_norm"].in_width
        group = H // int(self.model.config["norm_groups"])
        at = self.attention
        stored = score_width(H // self.heads, b, at["score_left_shift"], at["frac_bits"]) - at["frac_bits"] + 1
        buffers = 3 * n * stored + 2 * (2 * group * in_width + H * (8 + out_width))
        residual = 2 * n * H * out_width
        if self.engine == "event":
            weights = membranes = 0
            for name in LINEARS:           # each projection's own geometry, as it builds it
                proj = self._projection(name)
                proj._MustUse__silence = True
                words = proj.inputs << proj.group_bits
                weights += words * proj.lanes * proj.weight_bits
                # Membrane RAM and initial-membrane ROM; the event buffer.
                membranes += 2 * proj.outputs * proj.membrane_shape.width + proj.batch * proj.input_layout.size
            # Q and V rows, K columns (4 bits a level, sign included).
            return {"weights": weights, "activations": 3 * n * H * b + residual + membranes,
                    "buffers": buffers}
        return {
            "weights": sum(w.weights.size * wbits for w in lin.values()),
            "activations": 4 * n * H * b + residual,
            "buffers": buffers,
        }

    # -- the layer ------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        H, n = self.hidden, self.tokens
        elements = n * H
        in_width = self.layer.norms["attention_norm"].in_width
        sm = m.submodules
        sm.x_encoder = x_enc = self._encoder(H)
        attention_levels = self._attention_half(m, x_enc.o_stream)
        sm.attention_norm = norm1 = self._norm("attention_norm")
        sm.f_encoder = f_enc = self._encoder(H)
        ffn_levels = self._ffn_half(m, f_enc.o_stream)
        sm.output_norm = norm2 = self._norm("output_norm")

        # Residual inputs of both halves wait in memories (token-major, one value a word).
        value = signed(len(self.i_stream.payload))
        sm.h_memory = h_mem = Memory(shape=value, depth=elements, init=[])
        sm.h1_memory = h1_mem = Memory(shape=value, depth=elements, init=[])

        # One sentence at a time: inputs stop after `elements` until the last output leaves.
        received, sent = Signal(range(elements + 1)), Signal(range(elements))
        accepting = received != elements
        h_write = h_mem.write_port()
        m.d.comb += [
            self.i_stream.ready.eq(accepting & x_enc.i_stream.ready),
            x_enc.i_stream.valid.eq(accepting & self.i_stream.valid),
            x_enc.i_stream.payload.eq(self._level(m, self.i_stream.payload, self.input_shift)),
            h_write.addr.eq(received), h_write.data.eq(self.i_stream.payload),
            h_write.en.eq(self.i_stream.valid & self.i_stream.ready),
        ]
        with m.If(self.i_stream.valid & self.i_stream.ready):
            m.d.sync += received.eq(received + 1)
        with m.If(self.o_stream.valid & self.o_stream.ready):
            m.d.sync += sent.eq(wrapped_increment(sent, elements))
            with m.If(sent == elements - 1):
                m.d.sync += received.eq(0)
        self._residual(m, h_mem, attention_levels, norm1.i_stream, self.attention_residual_shift,
                       in_width)

        # h1 feeds the FFN's encoder and waits in its memory for the second residual add.
        h1_count = Signal(range(elements))
        h1_write = h1_mem.write_port()
        h1 = norm1.o_stream.payload
        m.d.comb += [
            norm1.o_stream.ready.eq(f_enc.i_stream.ready),
            f_enc.i_stream.valid.eq(norm1.o_stream.valid),
            f_enc.i_stream.payload.eq(self._level(m, h1, self.ffn_input_shift)),
            h1_write.addr.eq(h1_count), h1_write.data.eq(h1),
            h1_write.en.eq(norm1.o_stream.valid & norm1.o_stream.ready),
        ]
        with m.If(norm1.o_stream.valid & norm1.o_stream.ready):
            m.d.sync += h1_count.eq(wrapped_increment(h1_count, elements))
        self._residual(m, h1_mem, ffn_levels, norm2.i_stream, self.output_residual_shift, in_width)
        wiring.connect(m, norm2.o_stream, wiring.flipped(self.o_stream))
        return m

    def _attention_half(self, m, encoded):
        """Q, K, V, attention and the output projection, from the encoded residual stream to
        the attention output's levels (a stream)."""
        H, sm = self.hidden, m.submodules
        sm.query, sm.key, sm.value = (self._projection(name) for name in ("query", "key", "value"))
        sm.attention = attention = self._attention()
        sm.attention_output = projection = self._projection("attention_output")
        sm.a_counter = counter = self._counter(H)
        # Q, K and V integrate the same spikes (or events): a beat goes when all three take it.
        projections = (sm.query, sm.key, sm.value)
        all_ready = sm.query.i_stream.ready & sm.key.i_stream.ready & sm.value.i_stream.ready
        m.d.comb += encoded.ready.eq(all_ready)
        ports = (attention.q_stream, attention.k_stream, attention.v_stream)
        for name, proj, port in zip("qkv", projections, ports):
            m.d.comb += [proj.i_stream.valid.eq(encoded.valid & all_ready),
                         proj.i_stream.payload.eq(encoded.payload)]
            if self.engine == "event":        # events go straight on, zeros never sent
                wiring.connect(m, proj.o_stream, port)
            else:                             # spike trains are counted back into levels
                sm[f"{name}_counter"] = counter_in = self._counter(H)
                wiring.connect(m, proj.o_stream, counter_in.i_stream)
                wiring.connect(m, counter_in.o_stream, port)
        if self.engine == "event":
            wiring.connect(m, attention.o_stream, projection.i_stream)
        else:
            sm.c_encoder = c_enc = self._encoder(H)
            wiring.connect(m, attention.o_stream, c_enc.i_stream)
            wiring.connect(m, c_enc.o_stream, projection.i_stream)
        wiring.connect(m, projection.o_stream, counter.i_stream)
        return counter.o_stream

    def _ffn_half(self, m, encoded):
        """The FFN's two projections, whose hidden layer passes spikes (or events) directly,
        from the encoded stream to the output's levels."""
        sm = m.submodules
        sm.intermediate = ffn_in = self._projection("intermediate")
        sm.output = ffn_out = self._projection("output")
        sm.o_counter = counter = self._counter(self.hidden)
        wiring.connect(m, encoded, ffn_in.i_stream)
        wiring.connect(m, ffn_in.o_stream, ffn_out.i_stream)
        wiring.connect(m, ffn_out.o_stream, counter.i_stream)
        return counter.o_stream

    def _level(self, m, h, theta: int):
        """The encoder's level of a residual value, as :meth:`IntegerStudent.encode`:
        clamp(floor((h + (off << theta) + half) / 2**theta), 0, 2**b - 1) on offset spike
        trains, that less off (signed, zero silent) on events."""
        b = self.act_bits
        lo, hi = level_range(b, signed=self.engine == "event")
        shift = 0 if self.engine == "event" else (1 << (b - 1)) << theta
        level = Signal(signed(len(h) + b + 2))
        m.d.comb += level.eq((h + shift + ((1 << theta) >> 1)) >> theta)
        return Mux(level < lo, lo, Mux(level > hi, hi, level))[:b]

    def _residual(self, m, memory, levels, sink, shift: int, width: int) -> None:
        """sink <- memory[k] + ((level - off) << shift) for the k-th level of the sentence (the
        level itself, signed, on events)."""
        off = 0 if self.engine == "event" else 1 << (self.act_bits - 1)
        elements = self.tokens * self.hidden
        index = Signal(range(elements))
        following = wrapped_increment(index, elements)
        # The sum leaves from a register: a block-RAM read, the add and the norm's first
        # stage in one cycle were the placed layer's critical path.
        output = OutputRegister(m, sink)
        advance = levels.valid & output.free
        # A synchronous read (block RAM; an asynchronous one became a wide LUT-RAM mux on
        # the ECP5) of the address the index holds next cycle, so that data is
        # memory[index] whenever a level arrives. Every word is written long before it is
        # read (a token's residual waits for its whole attention or FFN pass).
        read = memory.read_port()
        total = Signal(signed(width))
        m.d.comb += [read.addr.eq(Mux(advance, following, index)),
                     total.eq(read.data + ((levels.payload.as_signed() if off == 0 else
                                            (levels.payload - off).as_signed()) << shift)),
                     levels.ready.eq(output.free)]
        with m.If(advance):
            output.load(total)
            m.d.sync += index.eq(following)
