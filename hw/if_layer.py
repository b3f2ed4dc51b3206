"""IF layer generator: an accumulate-only Average integrate-and-fire layer."""
from __future__ import annotations

import numpy as np
from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sorbet_hw.hw.block import Block, Param, Stream
from sorbet_hw.hw.plumbing import OutputRegister, adder_tree, weight_code, wrapped_increment
from sorbet_hw.model.if_layer import (PARAMS, check_size, check_weights, if_layer, initial_membrane,
                                      layer_shape, membrane_range)
from sorbet_hw.model.params import MAX_DEMO_WEIGHTS, ParameterError, check_int, signed_width

__all__ = ["IFLayer", "BLOCK", "PARALLELISM", "layer_complete", "LAYER_SYNTH"]

# How a layer's hardware is unrolled (every layer block's), fully parallel by default.
PARALLELISM = (
    Param("lanes", None, "outputs computed in parallel (default all)", lo=1, hi="outputs",
          divides="outputs"),
    Param("inputs_per_cycle", None, "inputs summed a cycle (default all)", lo=1, hi="inputs",
          divides="inputs"),
)
# What `synth all` and the main job synthesize: the partly serial configuration the ratios
# benchmark compares (the fully parallel MAC layer is 512 multipliers: minutes of Yosys and
# no FPGA fit). synth.workloads slices the query projection alike.
LAYER_SYNTH = {"lanes": 4, "inputs_per_cycle": 8}


def layer_complete(demo_weights):
    """Completion of a layer block: without weights, seeded random demo weights of
    (inputs, outputs); zero bias; lanes and inputs_per_cycle fully parallel by default."""
    def complete(params: dict) -> dict:
        params = dict(params)
        seed = params.pop("seed", 0)
        shape = (params.pop("inputs", 32), params.pop("outputs", 16))
        if params.get("weights") is None:
            check_int("inputs", shape[0], 1, 65536)
            check_int("outputs", shape[1], 1, 65536)
            check_int("seed", seed, 0, 2 ** 32 - 1)
            if shape[0] * shape[1] > MAX_DEMO_WEIGHTS:
                raise ParameterError(f"inputs x outputs = {shape[0] * shape[1]:,} demo weights "
                                     f"exceed the limit of {MAX_DEMO_WEIGHTS:,}: pass weights")
            params["weights"] = demo_weights(np.random.default_rng(seed), params, shape)
        params["weights"] = np.asarray(params["weights"], dtype=np.int64)
        inputs, outputs = params["weights"].shape if params["weights"].ndim == 2 else shape
        if params.get("bias") is None:
            params["bias"] = np.zeros(outputs, np.int64)
        if params.get("lanes") is None:
            params["lanes"] = outputs
        if params.get("inputs_per_cycle") is None:
            params["inputs_per_cycle"] = inputs
        return params
    return complete


binary_demo = layer_complete(lambda rng, p, shape: rng.choice(
    [-1, 1] if p.get("weight_kind") == "binary" else [-1, 0, 1], size=shape))

BLOCK = Block(
    "if_layer", "accumulate-only Average integrate-and-fire layer over T steps",
    params=PARAMS + PARALLELISM,
    ports={"i_stream": Stream(In, lambda p: data.ArrayLayout(1, p.inputs), vector=("steps", "inputs")),
           "o_stream": Stream(Out, lambda p: data.ArrayLayout(1, p.outputs))},
    reference=if_layer, derive=layer_shape, rules=(check_size, check_weights),
    complete=binary_demo, extra_params=("inputs", "outputs", "seed"), synth_params=LAYER_SYNTH)


@BLOCK.generates
class IFLayer(wiring.Component):
    """N inputs x M outputs Average-IF layer over T steps, as :func:`model.if_layer.if_layer`.

    Parameters
    ----------
    weights : array of int, shape (N, M)
        Synapses, +-1 (``weight_kind="binary"``, 1 bit each) or -1/0/+1 (``"ternary"``,
        2 bits each), held in an on-chip ROM with a synchronous read port (block RAM on an
        FPGA, a ROM macro on an ASIC).
    bias : array of int, shape (M,)
        Added to the membrane at the start of each window. Default: zero.
    steps : int
        Time steps T of a window (input and output).
    threshold_shift : int
        The threshold is 2**threshold_shift: weight and activation scales folded into a shift.
    act_bits : int
        A neuron fires at most 2**act_bits - 1 times per window (<= T).
    lanes : int
        Output neurons updated in parallel; must divide M. Default: M.
    inputs_per_cycle : int
        Input spikes accumulated per neuron per cycle (an adder tree of +-1 terms); must
        divide N. Default: N (a whole beat per cycle); 1 gives a plain accumulator.

    Ports
    -----
    i_stream : In(stream.Signature(N)), the layout data.ArrayLayout(1, N) flat
        One beat per time step: bit j is input j's spike. T beats make a window.
    o_stream : Out(stream.Signature(M)), the layout data.ArrayLayout(1, M) flat
        One beat per output time step: bit i is neuron i's spike. T beats per window.

    Architecture, latency and throughput
    ------------------------------------
    Integration: each input beat is scanned in G * N / P cycles (G = M / lanes,
    P = inputs_per_cycle), the next beat being accepted in the last of them; a cycle adds,
    for ``lanes`` neurons, the weights of P inputs gated by their spikes. No multiplier: a
    spike selects +-w, an adder tree sums them. Firing: each of the T output steps takes G
    cycles of compare/subtract, the last one loading the output beat. One window costs
    T * G * (N / P + 1) + 1 cycles when neither side stalls.
    """

    def __init__(self, **params):
        p = BLOCK.check(params)
        self.weights, self.bias = p.weights, p.bias
        self.inputs, self.outputs, self.steps = p.inputs, p.outputs, p.steps
        self.threshold_shift, self.act_bits, self.weight_kind = p.threshold_shift, p.act_bits, p.weight_kind
        self.lanes, self.inputs_per_cycle = p.lanes, p.inputs_per_cycle
        self.membrane_shape = signed(signed_width(*membrane_range(
            inputs=p.inputs, steps=p.steps, bias=p.bias, threshold_shift=p.threshold_shift)))
        super().__init__(BLOCK.signature(p))

    @property
    def weight_bits(self) -> int:
        return 1 if self.weight_kind == "binary" else 2

    def _rom_words(self) -> list[int]:
        """ROM word at address g * (N / P) + c: weights of inputs c*P .. c*P+P-1 for the
        neurons of lane group g, input-major. Binary: 1 = +1, 0 = -1. Ternary: bit 0 = nonzero,
        bit 1 = negative."""
        n_chunks = self.inputs // self.inputs_per_cycle
        words = []
        for g in range(self.outputs // self.lanes):
            for c in range(n_chunks):
                word, pos = 0, 0
                for p in range(self.inputs_per_cycle):
                    for lane in range(self.lanes):
                        w = self.weights[c * self.inputs_per_cycle + p, g * self.lanes + lane]
                        word |= weight_code(w, self.weight_kind) << pos
                        pos += self.weight_bits
                words.append(word)
        return words

    def elaborate(self, platform):
        m = Module()
        lanes, per_cycle, wbits = self.lanes, self.inputs_per_cycle, self.weight_bits
        n_groups, n_chunks = self.outputs // lanes, self.inputs // per_cycle
        depth = n_groups * n_chunks
        m.submodules.weights = rom = Memory(shape=unsigned(per_cycle * lanes * wbits),
                                            depth=depth, init=self._rom_words())
        # A synchronous read, as block RAM has: the port is given the address the `addr`
        # register is about to take, so its data always belongs to `addr`.
        read = rom.read_port()

        # Membranes, input and output spikes are rotating registers: the lane group and input
        # chunk being worked on always sit in the low bits, so no wide multiplexer is needed.
        vw = self.membrane_shape.width
        group_bits = lanes * vw
        membranes = Signal(self.outputs * vw, init=self._initial_membranes())
        spikes_in = Signal(self.inputs)
        spikes_out = Signal(self.outputs)
        step = Signal(range(self.steps))
        group = Signal(range(n_groups))
        chunk = Signal(range(n_chunks))
        addr = Signal(range(depth))
        threshold = 1 << self.threshold_shift
        q_max = (1 << self.act_bits) - 1
        current = [membranes.word_select(lane, vw).as_signed() for lane in range(lanes)]

        def rotate_in(updated):
            return membranes.eq(Cat(membranes[group_bits:], *updated))

        next_addr = wrapped_increment(addr, depth)
        group_done = group == n_groups - 1
        beat_done = (chunk == n_chunks - 1) & group_done
        window_done = step == self.steps - 1
        loaded = Signal()                 # spikes_in holds a beat still to integrate
        output = OutputRegister(m, self.o_stream)
        with m.FSM() as fsm:
            with m.State("Integrate"):
                # The next beat is accepted in the last cycle of the current one.
                with m.If(self.i_stream.valid & self.i_stream.ready):
                    m.d.sync += [spikes_in.eq(self.i_stream.payload), loaded.eq(1)]
                with m.If(loaded):
                    updated = [(v + self._synapse_sum(read.data, spikes_in, lane))[:vw]
                               for lane, v in enumerate(current)]
                    m.d.sync += addr.eq(next_addr)
                    with m.If(~beat_done):
                        m.d.sync += spikes_in.eq(spikes_in.rotate_right(per_cycle))
                    with m.If(chunk == n_chunks - 1):
                        m.d.sync += [chunk.eq(0), rotate_in(updated),
                                     group.eq(Mux(group_done, 0, group + 1))]
                    with m.Else():
                        m.d.sync += [chunk.eq(chunk + 1), membranes[:group_bits].eq(Cat(*updated))]
                    with m.If(beat_done):
                        m.d.sync += step.eq(Mux(window_done, 0, step + 1))
                        with m.If(~self.i_stream.valid | window_done):
                            m.d.sync += loaded.eq(0)
                        with m.If(window_done):
                            m.next = "Fire"
            with m.State("Fire"):
                fired = [(v >= threshold) & (step < q_max) for v in current]
                with m.If(~group_done | output.free):
                    m.d.sync += [
                        rotate_in(Mux(spike, v - threshold, v)[:vw] for spike, v in zip(fired, current)),
                        spikes_out.eq(Cat(spikes_out[lanes:], *fired)),
                        group.eq(Mux(group_done, 0, group + 1)),
                    ]
                    with m.If(group_done):
                        output.load(Cat(spikes_out[lanes:], *fired))
                        m.d.sync += step.eq(Mux(window_done, 0, step + 1))
                        with m.If(window_done):
                            m.d.sync += membranes.eq(self._initial_membranes())
                            m.next = "Integrate"
        # A continuous assignment rather than an FSM-scoped one: Icarus never evaluates an
        # `always @*` whose inputs do not change after time zero, which left ready at X.
        m.d.comb += self.i_stream.ready.eq(
            fsm.ongoing("Integrate") & (~loaded | (beat_done & ~window_done)))
        m.d.comb += read.addr.eq(Mux(fsm.ongoing("Integrate") & loaded, next_addr, addr))
        return m

    def _initial_membranes(self) -> int:
        vw = self.membrane_shape.width
        value = 0
        for i, v in enumerate(initial_membrane(self.bias, self.threshold_shift)):
            value |= (int(v) & ((1 << vw) - 1)) << (i * vw)
        return value

    def _synapse_sum(self, word, in_spikes, lane):
        """Sum over this cycle's inputs of spike * weight for one lane: each term is a
        spike-gated +1 / -1 (or 0), added by a balanced tree."""
        terms = []
        for p in range(self.inputs_per_cycle):
            pos = (p * self.lanes + lane) * self.weight_bits
            spike = in_spikes[p]  # the current chunk sits in the low bits
            if self.weight_kind == "binary":
                positive = word[pos]
                terms.append(Mux(spike, Mux(positive, 1, -1), 0))
            else:
                nonzero, negative = word[pos], word[pos + 1]
                terms.append(Mux(spike & nonzero, Mux(negative, -1, 1), 0))
        return adder_tree(terms)

