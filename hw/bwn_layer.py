"""BWN layer generator: the integer model's binary-weight linear layer as a non-spiking
accelerator (the fair baseline of the IF layer)."""
from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sorbet_hw.hw.block import Block, Param, Stream
from sorbet_hw.hw.if_layer import LAYER_SYNTH, PARALLELISM, binary_demo
from sorbet_hw.hw.plumbing import adder_tree, weight_code, wrapped_increment
from sorbet_hw.hw.tiles import TILE, LevelTiles, tiled_layout
from sorbet_hw.model.bwn_layer import PARAMS, accumulator_range, bwn_layer
from sorbet_hw.model.if_layer import check_size, check_weights, layer_shape
from sorbet_hw.model.params import ParameterError, signed_width

__all__ = ["BWNLayer", "BLOCK"]


def _level(p):
    return signed(p.act_bits) if p.signed_inputs else unsigned(p.act_bits)


def level_layout(p) -> data.ArrayLayout:
    """The levels of one input beat."""
    return data.ArrayLayout(_level(p), p.inputs_per_cycle)


def _check_tiles(p) -> None:
    if p.skip_zeros and p.tokens_per_tile > 1:
        raise ParameterError("bwn_layer: tokens_per_tile > 1 needs skip_zeros=0 (the zero-skipping "
                             "front end compacts one token at a time); use event_if_layer for "
                             "tiles of sparse inputs")


# The integer model's own layer built directly (1-bit weights, 4-bit levels, add and
# subtract, one pass): the fair baseline; skip_zeros=1 makes it sparsity-aware.
BLOCK = Block(
    "bwn_layer", "binary-weight layer on 4-bit levels, add and subtract in one pass (the fair "
    "baseline of if_layer)",
    params=PARAMS + PARALLELISM + (
        Param("skip_zeros", False, "a zero level costs no cycle and no add (sparsity-aware)",
              flag=True), TILE),
    ports={"i_stream": Stream(In, lambda p: tiled_layout(level_layout(p), p.tokens_per_tile),
                              vector=("inputs",), coding=LevelTiles(level_layout)),
           "o_stream": Stream(Out, lambda p: data.ArrayLayout(unsigned(p.act_bits), p.lanes))},
    reference=bwn_layer, derive=layer_shape, rules=(check_size, check_weights, _check_tiles),
    complete=binary_demo, extra_params=("inputs", "outputs", "seed"), baseline_of="if_layer",
    synth_params=LAYER_SYNTH)


@BLOCK.generates
class BWNLayer(wiring.Component):
    """N inputs x M outputs binary-weight layer on 4-bit levels, as :func:`model.bwn_layer.bwn_layer`:
    ``quantize_activation(bias + levels @ W, threshold_shift, act_bits)``.

    Parameters
    ----------
    weights : array of int, shape (N, M)
        +-1 (``weight_kind="binary"``, 1 bit each) or -1/0/+1 (``"ternary"``, 2 bits), in a
        ROM with a synchronous read port (block RAM on an FPGA, a ROM macro on an ASIC).
    bias : array of int, shape (M,)
        Added once per output (the model's bias, offsets folded in). Default: zero.
    threshold_shift, act_bits : int
        Requantization: level = clamp(floor(z / 2**threshold_shift + 1/2), 0, 2**act_bits - 1).
    signed_inputs : bool
        Input levels in [-2**(act_bits-1), 2**(act_bits-1) - 1] (True: zero is a zero) or in
        [0, 2**act_bits - 1] (False: the ReLU levels of the FFN output layer).
    lanes : int
        Outputs accumulated in parallel; must divide M. Default: M.
    inputs_per_cycle : int
        Levels per input beat (P), and per compute cycle without ``skip_zeros``; must divide N.
        Default: N.
    skip_zeros : bool
        Sparsity-aware: a zero level costs no compute cycle and no add. The input beats are
        compacted, one nonzero level a cycle (a priority encoder over the beat), into a list
        of (input, level) entries; compute then walks the list, one entry a cycle.
    tokens_per_tile : int
        T tokens share each weight read (:mod:`hw.tiles`; 1 without ``skip_zeros`` only).

    Ports
    -----
    i_stream : In(stream.Signature(P * act_bits [+ 1])), the layout data.ArrayLayout(level, P) flat
        N / P beats per token; level p of a beat (input c*P + p) in bits p*act_bits upwards.
        With T > 1, bit P * act_bits is ``last``: set on a tile's final beat (a tile also
        ends at T tokens).
    o_stream : Out(stream.Signature(lanes * act_bits)), the layout data.ArrayLayout(unsigned(act_bits), lanes) flat
        M / lanes beats per token (output group 0 first); output level l of a beat in bits
        l*act_bits upwards.

    Architecture, latency and throughput
    ------------------------------------
    A token is loaded into an entry memory (synchronous block RAM), then computed: for each
    of the G = M / lanes output groups, every entry is read, its weights read from the ROM,
    and ``lanes`` accumulators add or subtract its levels (an adder tree of P signed terms
    without ``skip_zeros``, one term with it); no multiplier. The group's last entry
    requantizes the accumulators into the output register. A three-stage pipeline (entry
    read, weight read, accumulate) runs through all groups without bubbles; a full output
    register stalls it. Per token, when neither side stalls: loading N / P cycles (with
    ``skip_zeros``: for each beat, one cycle per nonzero level, at least one), computing
    G * E + 3 cycles (E = N / P entries, or the number of nonzero levels, at least one).
    Loading and computing do not overlap: a token's beats are accepted once the previous
    token is computed. The bias ROM is read once per group.

    With T > 1 tokens a tile, the tile's tokens are loaded, then the token loop is innermost:
    a weight word is read once and applied to each token of the tile in consecutive cycles,
    each token with its own ``lanes`` accumulators (T x lanes registers, one token's written
    a cycle). A token's last entry writes its requantized group into an output RAM (T * G
    words); once the tile is computed, it is read out token by token, one beat a cycle.
    Per tile of t tokens: loading t N / P cycles, computing t G E + 3, reading out t G + 1.
    """

    def __init__(self, **params):
        p = BLOCK.check(params)
        self.weights, self.bias = p.weights, p.bias
        self.inputs, self.outputs = p.inputs, p.outputs
        self.threshold_shift, self.act_bits, self.weight_kind = p.threshold_shift, p.act_bits, p.weight_kind
        self.signed_inputs, self.skip_zeros = p.signed_inputs, p.skip_zeros
        self.lanes, self.inputs_per_cycle = p.lanes, p.inputs_per_cycle
        self.tokens_per_tile = p.tokens_per_tile
        self.acc_shape = signed(signed_width(*accumulator_range(
            inputs=p.inputs, bias=p.bias, act_bits=p.act_bits, signed_inputs=p.signed_inputs)) + 1)
        super().__init__(BLOCK.signature(p))

    @property
    def weight_bits(self) -> int:
        return 1 if self.weight_kind == "binary" else 2

    @property
    def groups(self) -> int:
        return self.outputs // self.lanes

    def _rom_words(self) -> list[int]:
        """Dense: word g * (N / P) + c holds the weights of inputs c*P .. c*P+P-1 for the lanes
        of group g, input-major. Skip: word g * N + j holds input j's weights for group g."""
        per_word = 1 if self.skip_zeros else self.inputs_per_cycle
        words = []
        for g in range(self.groups):
            for c in range(self.inputs // per_word):
                word, pos = 0, 0
                for p in range(per_word):
                    for lane in range(self.lanes):
                        w = self.weights[c * per_word + p, g * self.lanes + lane]
                        word |= weight_code(w, self.weight_kind) << pos
                        pos += self.weight_bits
                words.append(word)
        return words

    def _bias_words(self) -> list[int]:
        width = self.acc_shape.width
        return [sum((int(self.bias[g * self.lanes + lane]) & ((1 << width) - 1)) << (lane * width)
                    for lane in range(self.lanes)) for g in range(self.groups)]

    def elaborate(self, platform):
        m = Module()
        a, per_beat, lanes, groups = self.act_bits, self.inputs_per_cycle, self.lanes, self.groups
        chunks = self.inputs // per_beat
        skip, tile = self.skip_zeros, self.tokens_per_tile
        index_width = max(1, (self.inputs - 1).bit_length())
        depth = self.inputs if skip else chunks              # entries a token
        m.submodules.entries = entries = Memory(
            shape=unsigned(index_width + a if skip else per_beat * a), depth=depth * tile, init=[])
        write, read = entries.write_port(), entries.read_port()
        per_word = 1 if skip else per_beat
        m.submodules.weights = rom = Memory(shape=unsigned(per_word * lanes * self.weight_bits),
                                            depth=groups * (self.inputs // per_word),
                                            init=self._rom_words())
        weight_read = rom.read_port()
        aw = self.acc_shape.width
        m.submodules.bias = bias_rom = Memory(shape=unsigned(lanes * aw), depth=groups,
                                              init=self._bias_words())
        bias_read = bias_rom.read_port()

        count = Signal(range(depth + 1))          # entries of a token (skip: its nonzeros)
        tokens = Signal(range(tile + 1))          # tokens of the tile
        words = Signal(range(groups * tile + 1))  # their output words (tokens * G, by adds)
        acc = [[Signal(self.acc_shape, name=f"acc{t}_{lane}" if tile > 1 else f"acc{lane}")
                for lane in range(lanes)] for t in range(tile)]
        out = self.o_stream

        # -- compute: entry read -> weight read -> accumulate, token innermost ----------------
        issuing = Signal()
        entry, group, token = Signal(range(depth)), Signal(range(groups)), Signal(range(tile))
        entry_addr = Signal(range(depth * tile)) if tile > 1 else entry     # token * depth + entry
        out_addr = Signal(range(groups * tile))                             # token * groups + group
        rom_addr = Signal(range(groups * (self.inputs // per_word)))    # dense: in issue order
        group_base = Signal(range(groups * self.inputs))                   # skip: g * N
        s1 = {"valid": Signal(), "first": Signal(), "last": Signal(), "group": Signal(range(groups)),
              "rom": Signal.like(rom_addr), "base": Signal.like(group_base), "token": Signal.like(token),
              "out": Signal.like(out_addr)}
        s2 = {"valid": Signal(), "first": Signal(), "last": Signal(), "token": Signal.like(token),
              "out": Signal.like(out_addr), "levels": Signal(a if skip else per_beat * a)}
        # A tile's outputs go to a RAM, read out token by token once it is computed: the
        # compute never waits for the output stream.
        stall = (s2["valid"] & s2["last"] & out.valid & ~out.ready) if tile == 1 else Const(0)
        # Memories are read only for work in flight (a held read keeps its data): a weight
        # word once per tile, a bias word once per group and tile.
        fresh = (s1["token"] == 0) if tile > 1 else Const(1)
        m.d.comb += [read.en.eq(issuing & ~stall), weight_read.en.eq(s1["valid"] & fresh & ~stall),
                     bias_read.en.eq(s1["valid"] & s1["first"] & fresh & ~stall),
                     read.addr.eq(entry_addr), bias_read.addr.eq(s1["group"])]
        if skip:
            m.d.comb += weight_read.addr.eq(s1["base"] + read.data[:index_width])
        else:
            m.d.comb += weight_read.addr.eq(s1["rom"])

        if tile == 1:
            with m.If(out.ready):
                m.d.sync += out.valid.eq(0)
        else:
            m.submodules.outputs = outputs = Memory(shape=unsigned(lanes * a), depth=groups * tile, init=[])
            result = outputs.write_port()
        with m.If(~stall):
            last_entry = entry == count - 1
            last_token = (token == tokens - 1) if tile > 1 else Const(1)
            m.d.sync += [s1["valid"].eq(issuing), s1["first"].eq(entry == 0),
                         s1["last"].eq(last_entry), s1["group"].eq(group),
                         s1["rom"].eq(rom_addr), s1["base"].eq(group_base),
                         s1["token"].eq(token), s1["out"].eq(out_addr),
                         s2["valid"].eq(s1["valid"]), s2["first"].eq(s1["first"]),
                         s2["last"].eq(s1["last"]), s2["token"].eq(s1["token"]), s2["out"].eq(s1["out"]),
                         s2["levels"].eq(read.data[index_width:] if skip else read.data)]
            with m.If(issuing & ~last_token):
                m.d.sync += [token.eq(token + 1), entry_addr.eq(entry_addr + depth),
                             out_addr.eq(out_addr + groups)]
            with m.If(issuing & last_token):
                next_entry = Mux(last_entry, 0, entry + 1)
                m.d.sync += [entry.eq(next_entry), rom_addr.eq(rom_addr + 1)]
                if tile > 1:
                    m.d.sync += [token.eq(0), entry_addr.eq(next_entry),
                                 out_addr.eq(Mux(last_entry, wrapped_increment(group, groups), group))]
                with m.If(last_entry):
                    m.d.sync += [group.eq(wrapped_increment(group, groups)),
                                 group_base.eq(group_base + self.inputs)]
                    with m.If(group == groups - 1):
                        m.d.sync += issuing.eq(0)
            with m.If(s2["valid"]):
                biases = [bias_read.data.word_select(lane, aw).as_signed() for lane in range(lanes)]
                current = acc[0] if tile == 1 else [
                    Array(acc[t][lane] for t in range(tile))[s2["token"]] for lane in range(lanes)]
                totals = [(Mux(s2["first"], b, v) + self._contribution(weight_read.data, s2["levels"], lane))[:aw]
                          .as_signed() for lane, (b, v) in enumerate(zip(biases, current))]
                for t in range(tile):
                    with m.If(s2["token"] == t):
                        m.d.sync += [v.eq(total) for v, total in zip(acc[t], totals)]
                levels = Cat(*(self._requantize(total) for total in totals))
                with m.If(s2["last"]):
                    if tile == 1:
                        m.d.sync += [out.valid.eq(1), out.payload.eq(levels)]
                    else:
                        m.d.comb += [result.en.eq(1), result.addr.eq(s2["out"]), result.data.eq(levels)]

        # -- load, compute, and with tiles the read-out ----------------------------------------
        chunk = Signal(range(chunks))
        loaded = Signal()                        # the tile's last entry is being written
        reading_out = Signal()
        if tile > 1:                             # outside the FSM: its statements are unconditional
            read_out = self._read_out(m, outputs, words, reading_out)
        with m.FSM() as fsm:
            with m.State("Load"):
                with m.If(loaded):
                    m.next = "Compute"
            with m.State("Compute"):
                with m.If(~issuing & ~s1["valid"] & ~s2["valid"]):
                    m.d.sync += [entry.eq(0), group.eq(0), rom_addr.eq(0), group_base.eq(0),
                                 count.eq(0), token.eq(0), entry_addr.eq(0), out_addr.eq(0)]
                    if tile == 1:
                        m.next = "Load"
                    else:
                        m.next = "Read out"
            if tile > 1:
                with m.State("Read out"):
                    with m.If(read_out):
                        m.d.sync += [tokens.eq(0), words.eq(0)]
                        m.next = "Load"
        # Handshakes as continuous assignments rather than FSM-scoped ones: Icarus never
        # evaluates an `always @*` whose inputs do not change after time zero.
        loading = fsm.ongoing("Load")
        m.d.comb += reading_out.eq(fsm.ongoing("Read out") if tile > 1 else 0)
        if skip:
            m.d.comb += loaded.eq(self._load_compacting(m, loading, write, count, chunk, issuing))
        else:
            accept = loading & self.i_stream.valid
            levels = self.i_stream.payload if tile == 1 else self.i_stream.payload[:-1]
            ends_token = accept & (chunk == chunks - 1)
            load_addr = Signal(range(depth * tile))
            m.d.comb += [self.i_stream.ready.eq(loading), write.en.eq(accept),
                         write.addr.eq(load_addr), write.data.eq(levels)]
            if tile == 1:
                m.d.comb += [loaded.eq(ends_token), load_addr.eq(chunk)]
            else:
                m.d.comb += loaded.eq(ends_token & (self.i_stream.payload[-1] | (tokens == tile - 1)))
                with m.If(accept):
                    m.d.sync += load_addr.eq(Mux(loaded, 0, load_addr + 1))
            with m.If(accept):
                m.d.sync += chunk.eq(wrapped_increment(chunk, chunks))
            with m.If(ends_token):
                m.d.sync += [tokens.eq(tokens + 1), words.eq(words + self.groups)]
            with m.If(loaded):
                m.d.sync += [count.eq(chunks), issuing.eq(1)]
        return m

    def _read_out(self, m, outputs, words, active):
        """The tile's output words, token by token (word t * G + g), one a cycle through the
        output register; returns the signal that the last one is taken by it."""
        out, groups = self.o_stream, self.groups
        read = outputs.read_port()
        addr = Signal.like(words)
        fetched = Signal()                       # read.data holds a word not yet sent
        stall = fetched & out.valid & ~out.ready
        remaining = Signal()
        m.d.comb += [remaining.eq(active & (addr != words)),
                     read.en.eq(remaining & ~stall), read.addr.eq(addr)]
        with m.If(out.ready):
            m.d.sync += out.valid.eq(0)
        with m.If(~stall):
            m.d.sync += fetched.eq(remaining)
            with m.If(fetched):
                m.d.sync += [out.valid.eq(1), out.payload.eq(read.data)]
            with m.If(remaining):
                m.d.sync += addr.eq(addr + 1)
        done = Signal()
        m.d.comb += done.eq(active & ~remaining & ~fetched)
        with m.If(done):
            m.d.sync += addr.eq(0)
        return done

    def _load_compacting(self, m, loading, write, count, chunk, issuing):
        """Skip zeros: hold a beat, write its nonzero levels one a cycle as (input, level)
        entries (lowest input first), accept the next beat as the last one is written.
        Returns the signal that the token is loaded."""
        a, per_beat, chunks = self.act_bits, self.inputs_per_cycle, self.inputs // self.inputs_per_cycle
        index_width = max(1, (self.inputs - 1).bit_length())
        held = Signal(per_beat * a)
        mask = Signal(per_beat)                  # nonzero levels of the held beat not yet written
        base = Signal(range(self.inputs))        # input index of the held beat's level 0
        holding, last_beat = Signal(), Signal()
        lowest = Signal(range(per_beat))
        for p in reversed(range(per_beat)):      # priority encoder: the lowest set bit wins
            with m.If(mask[p]):
                m.d.comb += lowest.eq(p)
        drained = (mask & (mask - 1)) == 0       # empty once this cycle's level is written
        ready = loading & (~holding | (drained & ~last_beat))
        accept = self.i_stream.valid & ready
        writing = loading & holding & mask.any()
        finishing = loading & holding & drained & last_beat & ~accept
        zero_token = finishing & (count == 0) & ~mask.any()    # its outputs: the bias alone
        m.d.comb += [self.i_stream.ready.eq(ready), write.en.eq(writing | zero_token),
                     write.addr.eq(Mux(zero_token, 0, count)),
                     write.data.eq(Mux(zero_token, 0, Cat((base + lowest)[:index_width],
                                                          held.word_select(lowest, a))))]
        with m.If(writing):
            m.d.sync += [count.eq(count + 1), mask.eq(mask & (mask - 1))]
        with m.If(accept):
            payload = self.i_stream.payload
            m.d.sync += [held.eq(payload), holding.eq(1), last_beat.eq(chunk == chunks - 1),
                         mask.eq(Cat(*(payload.word_select(p, a).any() for p in range(per_beat)))),
                         base.eq(Mux(chunk == 0, 0, base + per_beat)),
                         chunk.eq(wrapped_increment(chunk, chunks))]
        with m.Elif(loading & holding & drained):
            m.d.sync += holding.eq(0)
        with m.If(finishing):
            m.d.sync += [last_beat.eq(0), issuing.eq(1)]
            with m.If(zero_token):
                m.d.sync += count.eq(1)
        return finishing

    def _contribution(self, word, levels, lane):
        """Sum over this entry's levels of +-level (the weight's sign selects; ternary zeros
        add nothing), by a balanced tree."""
        a = self.act_bits
        terms = []
        per_word = 1 if self.skip_zeros else self.inputs_per_cycle
        for p in range(per_word):
            level = levels[p * a:(p + 1) * a]
            level = level.as_signed() if self.signed_inputs else Cat(level, Const(0, 1)).as_signed()
            pos = (p * self.lanes + lane) * self.weight_bits
            if self.weight_kind == "binary":
                terms.append(Mux(word[pos], level, -level))
            else:
                terms.append(Mux(word[pos], Mux(word[pos + 1], -level, level), 0))
        return adder_tree(terms)

    def _requantize(self, total):
        """clamp(floor((z + 2**s / 2) / 2**s), 0, 2**act_bits - 1), as quantize_activation."""
        q_max = (1 << self.act_bits) - 1
        shifted = (total + ((1 << self.threshold_shift) >> 1)) >> self.threshold_shift
        return Mux(shifted < 0, 0, Mux(shifted > q_max, q_max, shifted))[:self.act_bits]
