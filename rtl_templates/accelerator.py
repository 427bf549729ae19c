"""The whole-network accelerator: memories, sequencer and units, all parameterised by a HardwarePlan.

No layer-specific logic: the sequencer reads the layer program from a ROM and
starts one unit per layer; units walk addresses with counters and adders
driven by the descriptor fields. See docs/accelerator.md for the block
diagram and the timing of each unit.

Ports:
- `inputs`  stream: one input value per beat, CHW order, in the plan's input format.
- `outputs` stream: the output tensor, one value per beat, `last` on the final one.
- `trace_out` observation port (not `trace`: Verilator reserves that name): one write into the activation memory per cycle
  at most (`valid`, graph node index `layer`, flat CHW `index`, `data`,
  `saturated`); no backpressure, for testbenches and debug.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen.hwplan import ELTWISE, INPUT, MAC, MAX, OUTPUT, HardwarePlan, descriptor_fields, descriptor_words

from .engine import TileEngine
from .requant import Requantizer


def descriptor_layout(hw: HardwarePlan) -> data.StructLayout:
    return data.StructLayout({name: signed(width) for name, width in descriptor_fields(hw)})


def _bits(n: int) -> int:
    return max(int(n).bit_length(), 1)


class Widths:
    """Signal widths shared by the units, from the plan."""

    def __init__(self, hw: HardwarePlan):
        self.addr = _bits(hw.arena_depth)
        self.index = max(w for _, w in descriptor_fields(hw)) + _bits(hw.rows) + 2  # signed counters
        self.store = signed(hw.store_bits)


class WindowWalker(wiring.Component):
    """im2col address generation for `mac` and `max` layers.

    Loop nest: for each row tile (rows output pixels: `rows` setup cycles load
    each row's window origin), for each group and column tile, for each
    k-step (channel, ky, kx): one beat with every row's activation (or the
    pad value outside the image) and the column tile's weights, unpacked at
    the layer's own width. Memories have one cycle of read latency; the
    output register holds while `beats` is not ready.
    """

    def __init__(self, hw: HardwarePlan):
        self.hw = hw
        self.wd = Widths(hw)
        self.desc = descriptor_layout(hw)
        super().__init__({
            "start": In(1), "d": In(self.desc), "busy": Out(1),
            "rd_en": Out(1),
            "a_addr": Out(data.ArrayLayout(unsigned(self.wd.addr), hw.rows)),
            "a_data": In(data.ArrayLayout(self.wd.store, hw.rows)),
            "w_addr": Out(range(len(hw.weight_words))),
            "w_data": In(unsigned(hw.weight_word_width)),
            "beats": Out(stream.Signature(beat_layout(hw))),
        })

    def elaborate(self, platform):
        m = Module()
        hw, d, iw = self.hw, self.d, self.wd.index
        rows, cols = hw.rows, hw.cols
        S = lambda name: Signal(signed(iw), name=name)  # noqa: E731

        active, setup = Signal(), Signal()
        setup_i = Signal(range(rows))
        row_y = [S(f"row_y{i}") for i in range(rows)]
        row_x = [S(f"row_x{i}") for i in range(rows)]
        row_off = [S(f"row_off{i}") for i in range(rows)]
        row_ok = [Signal(name=f"row_ok{i}") for i in range(rows)]
        ox, iy0, ix0, ybase, m_cnt = S("ox"), S("iy0"), S("ix0"), S("ybase"), S("m_cnt")
        g, ntc, k, ky, kx, kyw = S("g"), S("ntc"), S("k"), S("ky"), S("kx"), S("kyw")
        chan_off, gchan, wtile, kword, sub = S("chan_off"), S("gchan"), S("wtile"), S("kword"), S("sub")

        s1_valid, s1_last = Signal(), Signal()
        s1_pad = Signal(rows)
        s1_sub = Signal(range(max(hw.w_bits, 2)))

        advance = Signal()
        issue = Signal()
        m.d.comb += [
            advance.eq(~s1_valid | self.beats.ready),
            issue.eq(active & ~setup & advance),
            self.rd_en.eq(advance),
            self.busy.eq(active | s1_valid),
            self.w_addr.eq(wtile + kword),
        ]
        inside = Signal(rows)
        for i in range(rows):
            y, x = row_y[i] + ky, row_x[i] + kx
            m.d.comb += [
                inside[i].eq(row_ok[i] & (y >= 0) & (y < d.h) & (x >= 0) & (x < d.w)),
                self.a_addr[i].eq(d.in_base + chan_off + row_off[i] + kyw + kx),
            ]

        last_k = k == d.k - 1
        with m.If(advance):
            m.d.sync += [s1_valid.eq(issue), s1_last.eq(last_k), s1_pad.eq(~inside), s1_sub.eq(sub)]

        with m.If(self.start):
            m.d.sync += [active.eq(1), setup.eq(1), setup_i.eq(0), m_cnt.eq(0), ox.eq(0), ix0.eq(-d.px),
                         iy0.eq(-d.py), ybase.eq(d.ybase0), g.eq(0), ntc.eq(0), k.eq(0), ky.eq(0), kx.eq(0),
                         kyw.eq(0), chan_off.eq(0), gchan.eq(0), wtile.eq(d.w_base), kword.eq(0), sub.eq(0)]
        with m.Elif(active & setup):
            # shift in the next output pixel's window origin; row 0 ends up with the tile's first pixel
            for i in range(rows - 1):
                m.d.sync += [row_y[i].eq(row_y[i + 1]), row_x[i].eq(row_x[i + 1]),
                             row_off[i].eq(row_off[i + 1]), row_ok[i].eq(row_ok[i + 1])]
            m.d.sync += [row_y[-1].eq(iy0), row_x[-1].eq(ix0), row_off[-1].eq(ybase + ix0), row_ok[-1].eq(m_cnt < d.m),
                         m_cnt.eq(m_cnt + 1)]
            with m.If(ox == d.ow - 1):
                m.d.sync += [ox.eq(0), ix0.eq(-d.px), iy0.eq(iy0 + d.sy), ybase.eq(ybase + d.row_step)]
            with m.Else():
                m.d.sync += [ox.eq(ox + 1), ix0.eq(ix0 + d.sx)]
            m.d.sync += setup_i.eq(setup_i + 1)
            with m.If(setup_i == rows - 1):
                m.d.sync += [setup.eq(0), setup_i.eq(0)]
        with m.Elif(issue):
            with m.If(~last_k):
                m.d.sync += k.eq(k + 1)
                with m.If(sub == d.w_sub_last):
                    m.d.sync += [sub.eq(0), kword.eq(kword + 1)]
                with m.Else():
                    m.d.sync += sub.eq(sub + 1)
                with m.If(kx == d.kw - 1):
                    m.d.sync += kx.eq(0)
                    with m.If(ky == d.kh - 1):
                        m.d.sync += [ky.eq(0), kyw.eq(0), chan_off.eq(chan_off + d.hw)]
                    with m.Else():
                        m.d.sync += [ky.eq(ky + 1), kyw.eq(kyw + d.w)]
                with m.Else():
                    m.d.sync += kx.eq(kx + 1)
            with m.Else():  # tile done: next column tile, group, or row tile
                m.d.sync += [k.eq(0), ky.eq(0), kx.eq(0), kyw.eq(0), kword.eq(0), sub.eq(0)]
                with m.If(ntc == d.nt - 1):
                    m.d.sync += ntc.eq(0)
                    with m.If(g == d.groups - 1):
                        m.d.sync += [g.eq(0), gchan.eq(0), chan_off.eq(0), wtile.eq(d.w_base)]
                        with m.If(m_cnt >= d.m):
                            m.d.sync += active.eq(0)
                        with m.Else():
                            m.d.sync += setup.eq(1)
                    with m.Else():
                        m.d.sync += [g.eq(g + 1), gchan.eq(gchan + d.group_in_step),
                                     chan_off.eq(gchan + d.group_in_step), wtile.eq(wtile + d.w_words)]
                with m.Else():
                    m.d.sync += [ntc.eq(ntc + 1), chan_off.eq(gchan), wtile.eq(wtile + d.w_words)]

        # stage 1: memory data -> beat
        m.d.comb += [self.beats.valid.eq(s1_valid), self.beats.payload.last.eq(s1_last)]
        for i in range(rows):
            m.d.comb += self.beats.payload.a[i].eq(Mux(s1_pad[i], d.pad_value, self.a_data[i]))
        for j in range(cols):
            lane = self.w_data[j * hw.w_bits:(j + 1) * hw.w_bits]
            with m.Switch(d.w_code):
                for code, width in enumerate(hw.weight_widths):
                    with m.Case(code):
                        m.d.comb += self.beats.payload.w[j].eq(lane.word_select(s1_sub, width).as_signed())
        return m


class TileCounter:
    """Row-tile / group / column-tile bookkeeping shared by the writers, in the walker's tile order."""

    def __init__(self, m: Module, d, iw: int, rows: int, with_columns: bool):
        self.m0 = Signal(signed(iw), name="tc_m0")          # first pixel of the row tile
        self.g = Signal(signed(iw), name="tc_g")
        self.nt = Signal(signed(iw), name="tc_nt")
        self.g_off = Signal(signed(iw), name="tc_g_off")    # first output channel of the group * ohw
        self.ch_off = Signal(signed(iw), name="tc_ch_off")  # first output channel of the tile * ohw
        self._m, self._d, self._rows, self._cols = m, d, rows, with_columns

    def reset(self):
        return [s.eq(0) for s in (self.m0, self.g, self.nt, self.g_off, self.ch_off)]

    def step(self):
        """Statements for moving to the next tile."""
        m, d = self._m, self._d
        group_step = d.group_out_step if self._cols else d.ohw
        last_nt = (self.nt == d.nt - 1) if self._cols else Const(1)
        with m.If(last_nt):
            m.d.sync += self.nt.eq(0)
            with m.If(self.g == d.groups - 1):
                m.d.sync += [self.g.eq(0), self.g_off.eq(0), self.ch_off.eq(0), self.m0.eq(self.m0 + self._rows)]
            with m.Else():
                m.d.sync += [self.g.eq(self.g + 1), self.g_off.eq(self.g_off + group_step),
                             self.ch_off.eq(self.g_off + group_step)]
        with m.Else():
            m.d.sync += [self.nt.eq(self.nt + 1), self.ch_off.eq(self.ch_off + d.nt_out_step)]


def beat_layout(hw: HardwarePlan) -> data.StructLayout:
    """A walker beat: every row's activation, the column tile's weights, the tile's last k-step."""
    return data.StructLayout({"a": data.ArrayLayout(Widths(hw).store, hw.rows),
                              "w": data.ArrayLayout(signed(hw.w_bits), hw.cols), "last": 1})


def write_layout(hw: HardwarePlan) -> data.StructLayout:
    wd = Widths(hw)
    return data.StructLayout({"en": 1, "addr": unsigned(wd.addr), "data": wd.store, "saturated": 1})


class MacWriter(wiring.Component):
    """Engine results (one output pixel's `cols` channels per beat) -> one activation write per cycle."""

    def __init__(self, hw: HardwarePlan):
        self.hw, self.wd = hw, Widths(hw)
        self.engine_results = TileEngine.result_layout_for(hw.cols, hw.store_bits - 1)
        super().__init__({
            "start": In(1), "d": In(descriptor_layout(hw)),
            "results": In(stream.Signature(self.engine_results)),
            "write": Out(write_layout(hw)),
            "busy": Out(1),  # result beats still to come: the last row tile's rows past M write nothing
        })

    def elaborate(self, platform):
        m = Module()
        d, iw, hw = self.d, self.wd.index, self.hw
        tc = TileCounter(m, d, iw, hw.rows, with_columns=True)
        i = Signal(range(hw.rows))
        j = Signal(range(hw.cols))
        lane_off = Signal(signed(iw))
        pixel = Signal(signed(iw))
        valid_cols = Signal(signed(iw))
        m.d.comb += [pixel.eq(tc.m0 + i), valid_cols.eq(Mux(tc.nt == d.nt - 1, d.cols_last, self.hw.cols))]
        busy = Signal()
        m.d.comb += self.busy.eq(busy)
        with m.If(self.start):
            m.d.sync += tc.reset() + [i.eq(0), j.eq(0), lane_off.eq(0), busy.eq(1)]
        consume = Signal()
        with m.If(self.results.valid):
            with m.If(pixel >= d.m):
                m.d.comb += consume.eq(1)
            with m.Else():
                m.d.comb += [
                    self.write.en.eq(1),
                    self.write.addr.eq(d.out_base + tc.ch_off + lane_off + pixel),
                    self.write.data.eq(self.results.payload.data[j]),
                    self.write.saturated.eq(self.results.payload.saturated.bit_select(j, 1)),
                ]
                with m.If(j == valid_cols - 1):
                    m.d.comb += consume.eq(1)
                with m.Else():
                    m.d.sync += [j.eq(j + 1), lane_off.eq(lane_off + d.ohw)]
        m.d.comb += self.results.ready.eq(consume)
        with m.If(consume):
            m.d.sync += [j.eq(0), lane_off.eq(0), i.eq(i + 1)]
            with m.If(i == hw.rows - 1):
                m.d.sync += i.eq(0)
                tc.step()
                with m.If((tc.nt == d.nt - 1) & (tc.g == d.groups - 1) & (tc.m0 + hw.rows >= d.m)):
                    m.d.sync += busy.eq(0)
        return m


class MaxUnit(wiring.Component):
    """Row-wise running max over a window's k-steps, then one write per valid output pixel."""

    def __init__(self, hw: HardwarePlan):
        self.hw, self.wd = hw, Widths(hw)
        super().__init__({
            "start": In(1), "d": In(descriptor_layout(hw)),
            "beats": In(stream.Signature(beat_layout(hw))),
            "write": Out(write_layout(hw)),
        })

    def elaborate(self, platform):
        m = Module()
        hw, d, iw = self.hw, self.d, self.wd.index
        best = [Signal(self.wd.store, name=f"best{i}") for i in range(hw.rows)]
        first = Signal(init=1)
        full = Signal()  # `best` holds a finished window waiting to be written
        m.d.comb += self.beats.ready.eq(~full)
        with m.If(self.beats.valid & ~full):
            for i in range(hw.rows):
                a = self.beats.payload.a[i]
                m.d.sync += best[i].eq(Mux(first | (a > best[i]), a, best[i]))
            m.d.sync += [first.eq(self.beats.payload.last), full.eq(self.beats.payload.last)]

        tc = TileCounter(m, d, iw, hw.rows, with_columns=False)
        lane = Signal(range(hw.rows))
        pixel = Signal(signed(iw))
        m.d.comb += pixel.eq(tc.m0 + lane)
        with m.If(self.start):
            m.d.sync += tc.reset() + [lane.eq(0), first.eq(1), full.eq(0)]
        with m.Elif(full):
            with m.If(pixel < d.m):
                m.d.comb += [self.write.en.eq(1), self.write.addr.eq(d.out_base + tc.g_off + pixel),
                             self.write.data.eq(Cat(*best).word_select(lane, hw.store_bits))]
            with m.If((lane == hw.rows - 1) | (pixel >= d.m - 1)):
                m.d.sync += [lane.eq(0), full.eq(0)]
                tc.step()
            with m.Else():
                m.d.sync += lane.eq(lane + 1)
        return m


class ParamReader(wiring.Component):
    """One parameter word (per-column bias and shift) per tile, in the walker's tile order."""

    def __init__(self, hw: HardwarePlan):
        self.hw, self.wd = hw, Widths(hw)
        super().__init__({
            "start": In(1), "d": In(descriptor_layout(hw)),
            "rd_en": Out(1), "addr": Out(range(len(hw.param_words))), "rd_data": In(unsigned(hw.param_width)),
            "params": Out(stream.Signature(unsigned(hw.param_width))),
        })

    def elaborate(self, platform):
        m = Module()
        d, iw = self.d, self.wd.index
        active, s1_valid = Signal(), Signal()
        t, mt = Signal(signed(iw)), Signal(signed(iw))
        advance = Signal()
        m.d.comb += [advance.eq(~s1_valid | self.params.ready), self.rd_en.eq(advance), self.addr.eq(d.p_base + t),
                     self.params.valid.eq(s1_valid), self.params.payload.eq(self.rd_data)]
        with m.If(advance):
            m.d.sync += s1_valid.eq(active)
        with m.If(self.start):
            m.d.sync += [active.eq(1), t.eq(0), mt.eq(0)]
        with m.Elif(active & advance):
            with m.If(t == d.tiles_per_mt - 1):
                m.d.sync += [t.eq(0), mt.eq(mt + 1)]
                with m.If(mt == d.mtiles - 1):
                    m.d.sync += active.eq(0)
            with m.Else():
                m.d.sync += t.eq(t + 1)
        return m


class EltwiseUnit(wiring.Component):
    """Add / standalone ReLU (two reads, requantize, one write per cycle) and the output stream."""

    def __init__(self, hw: HardwarePlan):
        self.hw, self.wd = hw, Widths(hw)
        super().__init__({
            "start": In(1), "d": In(descriptor_layout(hw)),
            "rd_en": Out(1), "a_addr": Out(unsigned(self.wd.addr)), "b_addr": Out(unsigned(self.wd.addr)),
            "a_data": In(self.wd.store), "b_data": In(self.wd.store),
            "write": Out(write_layout(hw)),
            "outputs": Out(stream.Signature(data.StructLayout({"data": self.wd.store, "last": 1}))),
        })

    def elaborate(self, platform):
        m = Module()
        hw, d, iw = self.hw, self.d, self.wd.index
        m.submodules.requant = rq = Requantizer(hw.acc_bits, hw.store_bits - 1, hw.max_right, hw.max_left)
        active, s1_valid = Signal(), Signal()
        idx, s1_idx = Signal(signed(iw)), Signal(signed(iw))
        streaming = d.kind == OUTPUT
        sink_ready = Mux(streaming, self.outputs.ready, 1)
        advance = Signal()
        m.d.comb += [advance.eq(~s1_valid | sink_ready), self.rd_en.eq(advance),
                     self.a_addr.eq(d.in_base + idx), self.b_addr.eq(d.in2_base + idx)]
        with m.If(advance):
            m.d.sync += [s1_valid.eq(active), s1_idx.eq(idx)]
        with m.If(self.start):
            m.d.sync += [active.eq(1), idx.eq(0)]
        with m.Elif(active & advance):
            m.d.sync += idx.eq(idx + 1)
            with m.If(idx == d.n_out - 1):
                m.d.sync += active.eq(0)

        acc = Signal(signed(hw.acc_bits))
        b_term = Mux(d.has_b, self.b_data << d.sb.as_unsigned(), 0)
        m.d.comb += [
            acc.eq((self.a_data << d.sa.as_unsigned()) + b_term),
            rq.acc.eq(acc), rq.bias.eq(0), rq.shift.eq(d.shift), rq.relu.eq(d.relu[0]), rq.relu6.eq(d.relu6[0]),
            rq.six.eq(d.six), rq.lo.eq(d.lo), rq.hi.eq(d.hi),
            self.outputs.valid.eq(s1_valid & streaming),
            self.outputs.payload.data.eq(self.a_data),
            self.outputs.payload.last.eq(s1_idx == d.n_out - 1),
        ]
        with m.If(s1_valid & ~streaming):
            m.d.comb += [self.write.en.eq(1), self.write.addr.eq(d.out_base + s1_idx),
                         self.write.data.eq(rq.y), self.write.saturated.eq(rq.saturated)]
        return m


def trace_layout(hw: HardwarePlan) -> data.StructLayout:
    return data.StructLayout({"valid": 1, "layer": unsigned(_bits(len(hw.layer_names))),
                              "index": unsigned(Widths(hw).addr), "data": Widths(hw).store, "saturated": 1})


class Accelerator(wiring.Component):
    def __init__(self, hw: HardwarePlan):
        self.hw, self.wd = hw, Widths(hw)
        self.trace_layout = trace_layout(hw)
        super().__init__({
            "inputs": In(stream.Signature(self.wd.store)),
            "outputs": Out(stream.Signature(data.StructLayout({"data": self.wd.store, "last": 1}))),
            "trace_out": Out(self.trace_layout),
        })

    def elaborate(self, platform):
        m = Module()
        hw, wd = self.hw, self.wd
        desc = descriptor_layout(hw)

        # --- memories, all initialised from the plan ---
        m.submodules.program = program = Memory(shape=unsigned(desc.size), depth=len(hw.program),
                                                init=descriptor_words(hw))
        m.submodules.weights = weights = Memory(shape=unsigned(hw.weight_word_width), depth=len(hw.weight_words),
                                                init=list(hw.weight_words))
        m.submodules.params = params = Memory(shape=unsigned(hw.param_width), depth=len(hw.param_words),
                                              init=list(hw.param_words))
        arena = []
        for r in range(hw.replicas):
            mem = Memory(shape=wd.store, depth=hw.arena_depth, init=[])
            m.submodules[f"arena{r}"] = mem
            arena.append(mem)
        prog_rd = program.read_port()
        w_rd, p_rd = weights.read_port(), params.read_port()
        a_rd = [mem.read_port() for mem in arena]
        a_wr = [mem.write_port() for mem in arena]

        m.submodules.mac_writer = macw = MacWriter(hw)

        # --- sequencer: fetch a descriptor, start its unit, wait for n_out completions (and no trailing beats) ---
        d = Signal(desc)
        pc = Signal(range(len(hw.program)))
        start = Signal()
        done = Signal(range(max(op.n_out for op in hw.program) + 1))
        m.d.comb += prog_rd.addr.eq(pc)
        write = Signal(write_layout(hw))
        completion = Signal()
        with m.FSM():
            with m.State("FETCH"):
                m.next = "LOAD"
            with m.State("LOAD"):
                m.d.sync += [d.eq(prog_rd.data), done.eq(0)]
                m.next = "START"
            with m.State("START"):
                m.d.comb += start.eq(1)
                m.next = "RUN"
            with m.State("RUN"):
                with m.If(completion):
                    m.d.sync += done.eq(done + 1)
                with m.If((done == d.n_out) & ~macw.busy):
                    m.d.sync += pc.eq(Mux(pc == len(hw.program) - 1, 0, pc + 1))
                    m.next = "FETCH"

        # --- units ---
        m.submodules.walker = walker = WindowWalker(hw)
        m.submodules.params_reader = preader = ParamReader(hw)
        out_bits = hw.store_bits - 1
        a_shape = (signed if hw.a_signed else unsigned)(hw.a_bits)
        m.submodules.engine = engine = TileEngine(hw.rows, hw.cols, signed(hw.w_bits), a_shape, hw.acc_bits, out_bits,
                                                  hw.max_right, hw.max_left)
        m.submodules.max_unit = maxu = MaxUnit(hw)
        m.submodules.eltwise = ew = EltwiseUnit(hw)
        kind = d.kind
        for unit, k in ((walker, (MAC, MAX)), (preader, (MAC,)), (macw, (MAC,)), (maxu, (MAX,)), (ew, (ELTWISE, OUTPUT))):
            m.d.comb += [unit.d.eq(d), unit.start.eq(start & Cat(*(kind == x for x in k)).any())]

        # walker -> engine (mac) or max unit (max)
        is_mac = kind == MAC
        m.d.comb += [
            w_rd.addr.eq(walker.w_addr), w_rd.en.eq(walker.rd_en), walker.w_data.eq(w_rd.data),
            p_rd.addr.eq(preader.addr), p_rd.en.eq(preader.rd_en), preader.rd_data.eq(p_rd.data),
            engine.params.valid.eq(preader.params.valid), engine.params.payload.eq(preader.params.payload),
            preader.params.ready.eq(engine.params.ready),
            engine.operands.valid.eq(walker.beats.valid & is_mac),
            engine.operands.payload.w.eq(walker.beats.payload.w),
            engine.operands.payload.last.eq(walker.beats.payload.last),
            maxu.beats.valid.eq(walker.beats.valid & ~is_mac),
            maxu.beats.payload.eq(walker.beats.payload),
            walker.beats.ready.eq(Mux(is_mac, engine.operands.ready, maxu.beats.ready)),
            engine.relu.eq(d.relu[0]), engine.relu6.eq(d.relu6[0]), engine.six.eq(d.six),
            engine.lo.eq(d.lo), engine.hi.eq(d.hi),
        ]
        wiring.connect(m, engine.results, macw.results)
        for i in range(hw.rows):
            m.d.comb += engine.operands.payload.a[i].eq(walker.beats.payload.a[i])

        # activation memory read ports: the walker owns all rows, the eltwise unit replicas 0 and 1
        walking = (kind == MAC) | (kind == MAX)
        for r, port in enumerate(a_rd):
            if r < hw.rows:
                m.d.comb += walker.a_data[r].eq(port.data)
            ew_addr = ew.a_addr if r == 0 else ew.b_addr
            m.d.comb += [port.addr.eq(Mux(walking, walker.a_addr[r] if r < hw.rows else 0, ew_addr)),
                         port.en.eq(Mux(walking, walker.rd_en, ew.rd_en))]
        m.d.comb += [ew.a_data.eq(a_rd[0].data), ew.b_data.eq(a_rd[1].data)]

        # input loader
        in_idx = Signal(range(hw.input.size + 1))
        loading = Signal()
        with m.If(start & (kind == INPUT)):
            m.d.sync += [loading.eq(1), in_idx.eq(0)]
        m.d.comb += self.inputs.ready.eq(loading)
        in_write = Signal(write_layout(hw))
        with m.If(self.inputs.valid & loading):
            m.d.comb += [in_write.en.eq(1), in_write.addr.eq(d.out_base + in_idx), in_write.data.eq(self.inputs.payload)]
            m.d.sync += in_idx.eq(in_idx + 1)
            with m.If(in_idx == d.n_out - 1):
                m.d.sync += loading.eq(0)

        # one write port for all replicas; the unit of the running layer drives it
        with m.Switch(kind):
            with m.Case(INPUT):
                m.d.comb += write.eq(in_write)
            with m.Case(MAC):
                m.d.comb += write.eq(macw.write)
            with m.Case(MAX):
                m.d.comb += write.eq(maxu.write)
            with m.Case(ELTWISE):
                m.d.comb += write.eq(ew.write)
        for port in a_wr:
            m.d.comb += [port.addr.eq(write.addr), port.data.eq(write.data), port.en.eq(write.en)]
        wiring.connect(m, wiring.flipped(self.outputs), ew.outputs)
        m.d.comb += completion.eq(write.en | (self.outputs.valid & self.outputs.ready))

        m.d.comb += [
            self.trace_out.valid.eq(write.en), self.trace_out.layer.eq(d.trace_id), self.trace_out.index.eq(write.addr - d.out_base),
            self.trace_out.data.eq(write.data), self.trace_out.saturated.eq(write.saturated),
        ]
        return m
