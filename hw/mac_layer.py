"""MAC layer generator: the conventional 8-bit baseline of the IF layer."""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sorbet_hw.hw.block import Block, Stream
from sorbet_hw.hw.if_layer import LAYER_SYNTH, PARALLELISM, layer_complete
from sorbet_hw.hw.plumbing import OutputRegister, adder_tree, wrapped_increment
from sorbet_hw.model.if_layer import check_size, layer_shape
from sorbet_hw.model.mac_layer import PARAMS, accumulator_range, mac_layer
from sorbet_hw.model.params import check_int, signed_width

__all__ = ["MACLayer", "BLOCK"]

BLOCK = Block(
    "mac_layer", "conventional 8-bit multiply-accumulate layer (the weaker baseline of if_layer)",
    params=PARAMS + PARALLELISM,
    ports={"i_stream": Stream(In, lambda p: data.ArrayLayout(signed(p.act_width), p.inputs),
                              vector=("inputs",)),
           "o_stream": Stream(Out, lambda p: data.ArrayLayout(signed(p.out_width), p.outputs))},
    reference=mac_layer, derive=layer_shape, rules=(check_size,),
    complete=layer_complete(lambda rng, p, shape: rng.integers(
        -(1 << (check_int("weight_width", p["weight_width"], 2, 16) - 1)),
        1 << (p["weight_width"] - 1), size=shape)),
    extra_params=("inputs", "outputs", "seed"), baseline_of="if_layer", synth_params=LAYER_SYNTH,
    multiplies=True)


@BLOCK.generates
class MACLayer(wiring.Component):
    """N inputs x M outputs integer layer with multipliers, as :func:`model.mac_layer.mac_layer`.

    Parameters
    ----------
    weights : array of int, shape (N, M)
        ``weight_width``-bit signed weights in an on-chip ROM (synchronous read: block RAM).
    bias : array of int, shape (M,)
        Accumulator start value. Default: zero.
    shift : int
        Requantization: outputs are (acc + 2**shift // 2) >> shift, clamped.
    act_width, weight_width, out_width : int
        Signed widths of inputs, weights and outputs (default 8).
    lanes : int
        Output neurons updated in parallel; must divide M. Default: M.
    inputs_per_cycle : int
        Products summed per neuron per cycle (P multipliers per lane); must divide N.
        Default: N.

    Ports
    -----
    i_stream : In(stream.Signature(N * act_width)), the layout data.ArrayLayout(signed(act_width), N) flat
        One input vector per beat, element j in bits j*act_width upwards.
    o_stream : Out(stream.Signature(M * out_width)), the layout data.ArrayLayout(signed(out_width), M) flat
        One output vector per input vector.

    Architecture, latency and throughput
    ------------------------------------
    The IF layer's datapath with a multiplier in place of each spike gate: a vector is
    scanned in G * N / P cycles (G = M / lanes, P = inputs_per_cycle), each cycle adding
    ``lanes`` x P products; then G cycles requantize and the last loads the output beat.
    A vector costs G * (N / P + 1) cycles when neither side stalls.
    """

    def __init__(self, **params):
        p = BLOCK.check(params)
        self.weights, self.bias, self.shift = p.weights, p.bias, p.shift
        self.inputs, self.outputs = p.inputs, p.outputs
        self.act_width, self.weight_width, self.out_width = p.act_width, p.weight_width, p.out_width
        self.lanes, self.inputs_per_cycle = p.lanes, p.inputs_per_cycle
        self.acc_shape = signed(signed_width(*accumulator_range(
            inputs=p.inputs, act_width=p.act_width, weight_width=p.weight_width, bias=p.bias)) + 1)
        super().__init__(BLOCK.signature(p))

    def _rom_words(self) -> list[int]:
        """Word g * (N / P) + c: weights of inputs c*P .. c*P+P-1 for lane group g."""
        ww, mask = self.weight_width, (1 << self.weight_width) - 1
        words = []
        for g in range(self.outputs // self.lanes):
            for c in range(self.inputs // self.inputs_per_cycle):
                word, pos = 0, 0
                for p in range(self.inputs_per_cycle):
                    for lane in range(self.lanes):
                        w = int(self.weights[c * self.inputs_per_cycle + p, g * self.lanes + lane])
                        word |= (w & mask) << pos
                        pos += ww
                words.append(word)
        return words

    def _initial(self) -> int:
        aw, value = self.acc_shape.width, 0
        for i, b in enumerate(self.bias):
            value |= (int(b) & ((1 << aw) - 1)) << (i * aw)
        return value

    def elaborate(self, platform):
        m = Module()
        lanes, per_cycle = self.lanes, self.inputs_per_cycle
        n_groups, n_chunks = self.outputs // lanes, self.inputs // per_cycle
        depth = n_groups * n_chunks
        m.submodules.weights = rom = Memory(shape=unsigned(per_cycle * lanes * self.weight_width),
                                            depth=depth, init=self._rom_words())
        read = rom.read_port()          # synchronous, as the IF layer's: block RAM
        aw, xw, ow = self.acc_shape.width, self.act_width, self.out_width
        # Rotating registers, as in the IF layer: the active group and chunk in the low bits.
        accs = Signal(self.outputs * aw, init=self._initial())
        x = Signal(self.inputs * xw)
        outs = Signal(self.outputs * ow)
        group = Signal(range(n_groups))
        chunk = Signal(range(n_chunks))
        addr = Signal(range(depth))
        current = [accs.word_select(lane, aw).as_signed() for lane in range(lanes)]
        next_addr = wrapped_increment(addr, depth)
        group_done = group == n_groups - 1
        output = OutputRegister(m, self.o_stream)
        with m.FSM() as fsm:
            with m.State("Load"):
                with m.If(self.i_stream.valid):
                    m.d.sync += x.eq(self.i_stream.payload)
                    m.next = "Accumulate"
            with m.State("Accumulate"):
                updated = [(v + self._dot(read.data, x, lane))[:aw] for lane, v in enumerate(current)]
                m.d.sync += [addr.eq(next_addr), x.eq(x.rotate_right(per_cycle * xw))]
                with m.If(chunk == n_chunks - 1):
                    m.d.sync += [chunk.eq(0), accs.eq(Cat(accs[lanes * aw:], *updated)),
                                 group.eq(Mux(group_done, 0, group + 1))]
                    with m.If(group_done):
                        m.next = "Output"
                with m.Else():
                    m.d.sync += [chunk.eq(chunk + 1), accs[:lanes * aw].eq(Cat(*updated))]
            with m.State("Output"):
                lo, hi = -(1 << (ow - 1)), (1 << (ow - 1)) - 1
                half = (1 << self.shift) >> 1
                scaled = [((v + half) >> self.shift) for v in current]
                clamped = [Mux(s < lo, lo, Mux(s > hi, hi, s))[:ow] for s in scaled]
                with m.If(~group_done | output.free):
                    m.d.sync += [accs.eq(accs.rotate_right(lanes * aw)),
                                 outs.eq(Cat(outs[lanes * ow:], *clamped)),
                                 group.eq(Mux(group_done, 0, group + 1))]
                    with m.If(group_done):
                        output.load(Cat(outs[lanes * ow:], *clamped))
                        m.d.sync += accs.eq(self._initial())
                        m.next = "Load"
        m.d.comb += self.i_stream.ready.eq(fsm.ongoing("Load"))
        # The port reads the address `addr` is about to take (it moves in every Accumulate
        # cycle); continuous, not FSM-scoped, for Icarus (see hw.if_layer).
        m.d.comb += read.addr.eq(Mux(fsm.ongoing("Accumulate"), next_addr, addr))
        return m

    def _dot(self, word, x, lane):
        """Sum over this cycle's P inputs of x_p * w_p for one lane: P multipliers, a tree."""
        ww, xw = self.weight_width, self.act_width
        terms = []
        for p in range(self.inputs_per_cycle):
            pos = (p * self.lanes + lane) * ww
            terms.append(x.word_select(p, xw).as_signed() * word[pos:pos + ww].as_signed())
        return adder_tree(terms)
