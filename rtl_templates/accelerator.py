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

from dataclasses import dataclass
from typing import Any

from amaranth import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen.hwplan import ELTWISE, INPUT, KINDS, MAC, MAX, OUTPUT, HardwarePlan, descriptor_fields, descriptor_words

from .engine import TileEngine
from .family import family_of, unless_ice40
from .memories import BankedMemory, InterleavedMemory
from .requant import PIPELINED_LATENCY, ActivationSupport, Requantizer
from .streams import LookaheadEnable, kept_copy, StreamFIFO


def descriptor_layout(hw: HardwarePlan) -> data.StructLayout:
    return data.StructLayout({name: signed(width) for name, width in descriptor_fields(hw)})


# descriptor fields that end a loop: the sequencer registers each minus 1 (`ends_layout`) when a layer starts, so
# no unit subtracts 1 from a descriptor field on its way to a counter's compare
LOOP_ENDS = ("n_out", "w", "kh", "kw", "k", "ow", "mtiles", "tiles_per_mt", "groups", "nt", "cols_last", "up", "tail")


def ends_layout(hw: HardwarePlan) -> data.StructLayout:
    """Each loop-ending descriptor field minus 1, at the field's width."""
    return data.StructLayout({name: signed(width) for name, width in descriptor_fields(hw) if name in LOOP_ENDS})


def _bits(n: int) -> int:
    return max(int(n).bit_length(), 1)


def activation_support(hw: HardwarePlan) -> ActivationSupport:
    """Only the activation hardware the plan's layers use (requantizing layers: mac and eltwise)."""
    ops = [op for op in hw.program if op.kind in (MAC, ELTWISE)]
    lowers = {op.clamp_lo for op in ops if op.clamp_lo != op.lo - 1}
    return ActivationSupport(leaky=any(op.neg_shift for op in ops),
                             lower="none" if not lowers else "zero" if lowers == {0} else "any",
                             upper=any(op.clamp_hi != op.hi + 1 for op in ops))


class Widths:
    """Signal widths shared by the units, from the plan."""

    def __init__(self, hw: HardwarePlan):
        self.addr = _bits(hw.arena_depth)
        self.index = max(w for _, w in descriptor_fields(hw)) + _bits(hw.rows) + 2  # signed counters
        self.store = signed(hw.store_bits)
        self._fields = dict(descriptor_fields(hw))

    def loop(self, field: str):
        """A counter that runs from 0 to descriptor field `field` - 1: no wider than the field itself."""
        return signed(self._fields[field])


class WindowWalker(wiring.Component):
    """im2col address generation for `mac` and `max` layers.

    Loop nest: for each row tile (rows output pixels: one setup cycle takes
    the window origins that were loaded, one a cycle, while the previous row
    tile ran; without hw.preload_origins, `rows` setup cycles load them), for
    each group and column tile, for each
    k-step (channel, ky, kx): one beat with every row's activation (or the
    pad value outside the image) and the column tile's weights, unpacked at
    the layer's own width. The arena and weight memories answer hw.read_latency
    cycles after the address (banked, rtl_templates/memories.py) and their
    data is registered once more (stage 2, so no bank multiplexer drives
    logic); every stage holds while `beats` is not ready.
    """

    def __init__(self, hw: HardwarePlan, consumer_free: bool | None = None):
        """`consumer_free`: the stall counts the FIFO's room without the beat the consumer may take this cycle
        (three entries), so the consumer's readiness does not reach it; None: everywhere but on the iCE40,
        whose UP5K cannot spare the third entry's logic cells (digits_cnn's 2x4 design no longer placed)."""
        self.hw = hw
        self.wd = Widths(hw)
        self.desc = descriptor_layout(hw)
        self.consumer_free = consumer_free
        super().__init__({
            "start": In(1), "d": In(self.desc), "e": In(ends_layout(hw)), "busy": Out(1),
            "rd_en": Out(1), "rd_en_next": Out(1),  # rd_en, and the value it takes after the coming edge
            "a_addr": Out(data.ArrayLayout(unsigned(self.wd.addr), hw.rows)),
            "a_data": In(data.ArrayLayout(self.wd.store, hw.rows)),
            "w_addr": Out(range(len(hw.weight_words))),
            "w_data": In(unsigned(hw.weight_word_width)),
            "beats": Out(stream.Signature(beat_layout(hw))),
        })

    def elaborate(self, platform):
        m = Module()
        r = _WalkRegisters(self.hw, self.wd, self.e)
        # the beats leave through a FIFO, so that the stall (`advance`, the read enable of every block RAM of the
        # arena and the weights) is a register, worked out a cycle ahead: ~s2.valid | out.i.ready, both as they
        # will be after the coming edge; `consumer_free`: the room counted without the beat the consumer may take
        # this cycle, so the consumer's logic does not reach the stall (three entries keep a beat per cycle)
        free = unless_ice40(self.consumer_free, platform)
        m.submodules.out = out = StreamFIFO(beat_layout(self.hw), depth=3 if free else 2)
        wiring.connect(m, out.o, wiring.flipped(self.beats))
        advance_en, issue = LookaheadEnable("walk_advance"), Signal()
        advance = advance_en.fanout
        advance_en.update(m, ~Mux(advance_en.local, r.flight[-1].valid, r.s2.valid)
                          | (out.ready_unless_taken if free else out.ready_next))
        # the loop counters' enable reads a copy of the advance of its own: `walk_advance` drives every read
        # stage and block-RAM enable, and its route to the issue gate (1.6 ns) began the OrangeCrab's critical
        # path into the group step's registers
        advance_here = kept_copy(m, "walk_issue_advance", advance_en.next, 1)
        m.d.comb += [
            issue.eq(r.walking & advance_here),
            self.rd_en.eq(advance), self.rd_en_next.eq(advance_en.next),
            self.busy.eq(r.active | Cat(*(stage.valid for stage in (*r.flight, r.s2)), out.o.valid).any()),
            self.w_addr.eq(r.wtile + r.kword),
        ]
        self._steps = self._local_steps(m, platform)
        inside = self._addresses(m, r, advance)
        last_k = r.k.last
        with m.If(advance):
            head, *rest = r.flight
            m.d.sync += [head.valid.eq(issue), head.last.eq(last_k), head.sub.eq(r.sub)]
            m.d.sync += [nxt.eq(prev) for prev, nxt in zip(r.flight, [*rest, r.s2])]
            m.d.sync += r.flight[1].pad.eq(~inside)  # the second read stage decides the pads (after the copy)
            m.d.sync += r.s2_w.eq(self.w_data)
            m.d.sync += [r.s2_a[i].eq(self.a_data[i]) for i in range(self.hw.rows)]
        with m.If(self.start):
            self._start(m, r)
        with m.Else():
            if self.hw.preload_origins:
                with m.If(r.active & ~r.pre_full):
                    self._next_origin(m, r, r.pre_y, r.pre_x, r.pre_off, r.pre_ok, r.pre_done, r.pre_full)
                with m.If(r.active & r.setup & r.pre_full):
                    self._take_origins(m, r)
            else:  # the setup cycles load the origins straight into the rows' registers
                with m.If(r.active & r.setup):
                    self._next_origin(m, r, r.row_y, r.row_x, r.row_off, r.row_ok, r.rows_done, r.setup, set_to=0)
            with m.If(issue):  # never during setup
                with m.If(~last_k):
                    self._next_k_step(m, r)
                with m.Else():
                    self._next_tile(m, r)
            # tile_end == k.last & ntc.last, the group's last column tile's last k-step, kept up to date beside them
            with m.If(issue & ~last_k):  # a k-step: k.last becomes k_left == 1
                m.d.sync += r.tile_end.eq((r.k.value == 1) & r.ntc.last)
            with m.If(issue & last_k):  # a new tile: k restarts, ntc steps or restarts
                m.d.sync += r.tile_end.eq((self.e.k == 0) & Mux(r.ntc.last, self.e.nt == 0, r.ntc.value == 1))
        self._beat(m, r, out.i, advance)
        return m

    def _local_steps(self, m: Module, platform) -> dict:
        """The descriptor's strides that the k-step and tile steps add: on ECP5 registered copies beside the
        walker, a cycle behind the descriptor (the first k-step comes at least two cycles after `start`), so no
        adder of these steps starts from the parameter reader's far registers (the OrangeCrab's critical path,
        5.1 ns); the iCE40 reads the descriptor itself (its UP5K cannot spare the flip-flops)."""
        fields = ("w", "hw", "group_in_step", "w_words")
        if not unless_ice40(None, platform):
            return {name: self.d[name] for name in fields}
        copies = {name: Signal.like(self.d[name], name=f"step_{name}", reset_less=True) for name in fields}
        m.d.sync += [copy.eq(self.d[name]) for name, copy in copies.items()]
        return copies

    def _addresses(self, m: Module, r: "_WalkRegisters", advance) -> Signal:
        """Every row's activation address for the current k-step; the returned bits say which of the positions
        issued a read stage ago lie in the image.

        Why a stage later: the window position (an add) and the bounds (compares) in one cycle were the
        OrangeCrab's critical path; the position is registered beside the first read stage and compared in the
        second, within the memories' read latency, so no cycle is added.
        """
        d = self.d
        assert self.hw.read_latency >= 2, "the pad decision takes the second read stage"
        inside = Signal(self.hw.rows)
        for i in range(self.hw.rows):
            y_at, x_at = r.row_y[i] + r.ky.value, r.row_x[i] + r.kx.value
            y, x = Signal(y_at.shape(), name=f"win_y{i}"), Signal(x_at.shape(), name=f"win_x{i}")
            ok = Signal(name=f"win_ok{i}")
            with m.If(advance):
                m.d.sync += [y.eq(y_at), x.eq(x_at), ok.eq(r.row_ok[i])]
            m.d.comb += [
                inside[i].eq(ok & (y >= 0) & (y < d.h) & (x >= 0) & (x < d.w)),
                self.a_addr[i].eq(r.row_off[i] + r.kpos),  # one adder: both terms are kept up to date
            ]
        return inside

    def _start(self, m: Module, r: "_WalkRegisters") -> None:
        d = self.d
        if self.hw.preload_origins:
            m.d.sync += r.pre_full.eq(0)
        m.d.sync += [r.active.eq(1), r.setup.eq(1), r.walking.eq(0), r.origin_i.eq(0), r.m_left.eq(d.m),
                     r.rows_done.eq(0), r.ix0.eq(-d.px), r.iy0.eq(-d.py), r.ybase.eq(d.ybase0), r.chan_off.eq(0),
                     r.krow.eq(0), r.kpos.eq(0), r.gchan.eq(0), r.gchan_next.eq(d.group_in_step),
                     r.wtile.eq(d.w_base), r.kword.eq(0), r.sub.eq(0)]
        m.d.sync += r.ox.restart() + r.g.restart() + r.ntc.restart() + r.k.restart() + r.ky.restart() + r.kx.restart()
        m.d.sync += r.tile_end.eq((self.e.k == 0) & (self.e.nt == 0))

    def _next_origin(self, m: Module, r: "_WalkRegisters", ys, xs, offs, oks, done, full, set_to: int = 1) -> None:
        """Shift the next output pixel's window origin into `ys/xs/offs/oks` (row 0 ends with the first); after
        `rows` of them `full` becomes `set_to`. With preloading these are the next row tile's registers, filled
        while the current row tile runs, so that taking them costs one setup cycle instead of `rows`."""
        d, rows = self.d, self.hw.rows
        for i in range(rows - 1):
            m.d.sync += [ys[i].eq(ys[i + 1]), xs[i].eq(xs[i + 1]), offs[i].eq(offs[i + 1]), oks[i].eq(oks[i + 1])]
        m.d.sync += [ys[-1].eq(r.iy0), xs[-1].eq(r.ix0), offs[-1].eq(d.in_base + r.ybase + r.ix0),
                     oks[-1].eq(r.m_left > 0), r.m_left.eq(r.m_left - 1), done.eq(r.m_left <= 1)]
        with m.If(r.ox.last):
            m.d.sync += r.ox.restart() + [r.ix0.eq(-d.px), r.iy0.eq(r.iy0 + d.sy), r.ybase.eq(r.ybase + d.row_step)]
        with m.Else():
            m.d.sync += r.ox.step() + [r.ix0.eq(r.ix0 + d.sx)]
        m.d.sync += r.origin_i.eq(r.origin_i + 1)
        with m.If(r.origin_i == rows - 1):
            m.d.sync += [full.eq(set_to), r.origin_i.eq(0)]
            if full is r.setup:  # the setup cycles' last origin: the k-steps start
                m.d.sync += r.walking.eq(1)

    def _take_origins(self, m: Module, r: "_WalkRegisters") -> None:
        """The row tile's one setup cycle: the preloaded origins become the rows' (and the preload starts over)."""
        for i in range(self.hw.rows):
            m.d.sync += [r.row_y[i].eq(r.pre_y[i]), r.row_x[i].eq(r.pre_x[i]), r.row_off[i].eq(r.pre_off[i]),
                         r.row_ok[i].eq(r.pre_ok[i])]
        m.d.sync += [r.rows_done.eq(r.pre_done), r.setup.eq(0), r.walking.eq(1), r.pre_full.eq(0)]

    def _next_k_step(self, m: Module, r: "_WalkRegisters") -> None:
        """kx, then ky, then the input channel; the weight sub-word, then the weight word (unless held)."""
        d, step = self.d, self._steps
        m.d.sync += r.k.step()
        with m.If(d.w_hold[0]):  # average pool: the tile's one weight word serves every k-step
            pass
        with m.Elif(r.sub == d.w_sub_last):
            m.d.sync += [r.sub.eq(0), r.kword.eq(r.kword + 1)]
        with m.Else():
            m.d.sync += r.sub.eq(r.sub + 1)
        with m.If(r.kx.last):
            m.d.sync += r.kx.restart()
            with m.If(r.ky.last):
                nxt = r.chan_off + step["hw"]
                m.d.sync += r.ky.restart() + [r.chan_off.eq(nxt), r.krow.eq(nxt), r.kpos.eq(nxt)]
            with m.Else():
                m.d.sync += r.ky.step() + [r.krow.eq(r.krow + step["w"]), r.kpos.eq(r.krow + step["w"])]
        with m.Else():
            m.d.sync += r.kx.step() + [r.kpos.eq(r.kpos + 1)]

    def _next_tile(self, m: Module, r: "_WalkRegisters") -> None:
        """The next column tile, group, or row tile (then setup again), or the end of the layer."""
        d, step = self.d, self._steps
        m.d.sync += r.k.restart() + r.ky.restart() + r.kx.restart() + [r.kword.eq(0), r.sub.eq(0)]

        def channel_start(value):  # the k-steps restart at the first input channel `value` (times h * w)
            return [r.chan_off.eq(value), r.krow.eq(value), r.kpos.eq(value)]

        with m.If(r.tile_end):  # == ntc.last here (k.last): a register, so the group step's enable is one gate
            m.d.sync += r.ntc.restart()
            with m.If(r.g.last):
                m.d.sync += r.g.restart() + channel_start(0) + [r.gchan.eq(0), r.gchan_next.eq(d.group_in_step),
                                                                r.wtile.eq(d.w_base), r.walking.eq(0)]
                with m.If(r.rows_done):
                    m.d.sync += r.active.eq(0)
                with m.Else():
                    m.d.sync += r.setup.eq(1)
            with m.Else():
                m.d.sync += r.g.step() + channel_start(r.gchan_next) + [
                    r.gchan.eq(r.gchan_next), r.gchan_next.eq(r.gchan_next + step["group_in_step"]),
                    r.wtile.eq(r.wtile + step["w_words"])]
        with m.Else():
            m.d.sync += r.ntc.step() + channel_start(r.gchan) + [r.wtile.eq(r.wtile + step["w_words"])]

    def _beat(self, m: Module, r: "_WalkRegisters", beat, advance) -> None:
        """Stage 2: registered memory data -> beat, pad values substituted, weights unpacked at the layer's width.
        It enters the FIFO as stage 2 moves on (`advance`, which is high only while the FIFO has room)."""
        hw, d = self.hw, self.d
        m.d.comb += [beat.valid.eq(r.s2.valid & advance), beat.payload.last.eq(r.s2.last)]
        for i in range(hw.rows):
            m.d.comb += beat.payload.a[i].eq(Mux(r.s2.pad[i], d.pad_value, r.s2_a[i]))
        for j in range(hw.cols):
            lane = r.s2_w[j * hw.w_bits:(j + 1) * hw.w_bits]
            with m.Switch(d.w_code):
                for code, width in enumerate(hw.weight_widths):
                    with m.Case(code):
                        m.d.comb += beat.payload.w[j].eq(lane.word_select(r.s2.sub, width).as_signed())


class _WalkRegisters:
    """The walker's counters: window origins per row, the tile and k-step position, stages 1 and 2."""

    def __init__(self, hw: HardwarePlan, wd: Widths, e):
        rows, iw = hw.rows, wd.index

        # the counters are set by `start` before any use, so they have no reset: on the iCE40 a reset joins the
        # logic of every enable (SB_DFFESR resets only when enabled), and it was the iCEBreaker's critical path
        def counter(name: str) -> Signal:
            return Signal(signed(iw), name=name, reset_less=True)

        self.active, self.setup = Signal(name="active"), Signal(name="setup")
        # active & ~setup, kept as a register of its own: the k-step issue (every loop counter's enable) is then
        # one gate of two flip-flops, `walking & advance` (its three-input form and the loop-end flags took four
        # LUT levels into the group counter, the OrangeCrab's critical path, 5.4 ns)
        self.walking = Signal(name="walking")
        # k.last & ntc.last, kept as a register of its own: the enable of the group and row-tile steps is then
        # `issue & tile_end` (the two flags and the enables in front had taken four LUT levels into gchan_next's
        # clock enable, an OrangeCrab-25F critical path, 5.2 ns)
        self.tile_end = Signal(name="tile_end", reset_less=True)
        self.rows_done = Signal(name="rows_done")  # every output pixel has had its window origin
        self.origin_i = Signal(range(rows), name="origin_i")  # origins loaded so far
        if hw.preload_origins:  # the next row tile's origins, loaded while this one runs: all once pre_full
            self.pre_full = Signal(name="pre_full")
            self.pre_done = Signal(name="pre_done")  # no pixel left after the preloaded origins
            self.pre_y = [counter(f"pre_y{i}") for i in range(rows)]
            self.pre_x = [counter(f"pre_x{i}") for i in range(rows)]
            self.pre_off = [counter(f"pre_off{i}") for i in range(rows)]
            self.pre_ok = [Signal(name=f"pre_ok{i}", reset_less=True) for i in range(rows)]
        self.row_y = [counter(f"row_y{i}") for i in range(rows)]
        self.row_x = [counter(f"row_x{i}") for i in range(rows)]
        self.row_off = [counter(f"row_off{i}") for i in range(rows)]
        self.row_ok = [Signal(name=f"row_ok{i}") for i in range(rows)]
        # chan_off: the k-steps' input channel * h * w; krow: + ky * w; kpos: + kx (the address's k-step part)
        # gchan_next: gchan + the group's input step, kept beside it, so a group step loads a register and the
        # channel registers' multiplexers have no adder from the far descriptor in front (the OrangeCrab, 5.1 ns)
        # m_left: output pixels without an origin yet, counting down, so the origin's flags compare with constants
        # (m_cnt + 1 >= m, an add and a compare in one carry chain, was an OrangeCrab-25F critical path, 5.2 ns)
        for name in ("iy0", "ix0", "ybase", "m_left", "chan_off", "krow", "kpos", "gchan", "gchan_next", "wtile",
                     "kword", "sub"):
            setattr(self, name, counter(name))
        # only the window's ky and kx are read as positions; the other loops count down to their last pass
        for name, field in (("ox", "ow"), ("g", "groups"), ("ntc", "nt"), ("k", "k"), ("ky", "kh"), ("kx", "kw")):
            setattr(self, name, LoopCounter(wd.loop(field), e[field], name, counts_up=name in ("ky", "kx")))
        # a beat's flags, through the memories' read_latency stages (reads in flight), then stage 2
        flags = data.StructLayout({"valid": 1, "last": 1, "pad": rows, "sub": range(max(hw.w_bits, 2))})
        self.flight = [Signal(flags, name=f"flight{i}") for i in range(hw.read_latency)]
        # stage 2: the memories' outputs registered, so no bank multiplexer drives the pad muxes or the unpacking
        self.s2 = Signal(flags, name="s2")
        self.s2_a = [Signal(wd.store, name=f"s2_a{i}") for i in range(rows)]
        self.s2_w = Signal(hw.weight_word_width, name="s2_w")


class LoopCounter:
    """A loop counter from 0 to `end` (the loop's last value), its `last` flag registered: the compare runs
    beside the counter's enable logic instead of in front of it.

    With `counts_up` (the position, `value`, is read) it counts up and `last` compares the incremented count with `end`;
    otherwise it counts the passes left down to 0 and `last` compares the count with 1, a constant, so no
    carry chain lies in front of the compare (the k-step loop's add and compare were the OrangeCrab's
    critical path, 5.4 ns)."""

    def __init__(self, shape, end, name: str, counts_up: bool = True):
        self.counts_up, self.end = counts_up, end
        self.value = Signal(shape, name=name if counts_up else f"{name}_left", reset_less=True)  # set by `restart`
        self.last = Signal(name=f"{name}_last", reset_less=True)

    def restart(self) -> list:
        return [self.value.eq(0 if self.counts_up else self.end), self.last.eq(self.end == 0)]

    def step(self) -> list:
        if self.counts_up:
            return [self.value.eq(self.value + 1), self.last.eq(self.value + 1 == self.end)]
        return [self.value.eq(self.value - 1), self.last.eq(self.value == 1)]


class TileCounter:
    """Row-tile / group / column-tile bookkeeping shared by the writers, in the walker's tile order.

    The writers' per-value decisions compare small registers only: `rows_left`
    (valid rows in this row tile) and `last_col` (the tile's last valid column)
    are worked out when the tile changes, off the writers' ready path.
    """

    def __init__(self, m: Module, d, e, iw: int, rows: int, cols: int | None, platform=None):
        self.m0 = Signal(signed(iw), name="tc_m0")          # first pixel of the row tile
        self.g_left = Signal.like(d.groups, name="tc_g_left")  # groups after this one
        self.nt_left = Signal.like(d.nt, name="tc_nt_left")    # column tiles of the group after this one
        self.g_off = Signal(signed(iw), name="tc_g_off")    # first output channel of the group * ohw
        self.ch_off = Signal(signed(iw), name="tc_ch_off")  # first output channel of the tile * ohw
        # on ECP5 the next group's g_off, kept beside it, so a group step loads registers: yosys had shared one
        # adder between the two steps of ch_off, its operands multiplexed by the step's enable (col_last into the
        # carry chain: an OrangeCrab-25F critical path, 5.2 ns); the iCE40 adds (its UP5K has no cells to spare)
        self.g_off_next = (Signal(signed(iw), name="tc_g_off_next") if unless_ice40(None, platform) else None)
        self.left = Signal(signed(iw), name="tc_left")      # m - m0: output pixels from the row tile's first on
        self.rows_left = Signal(range(rows + 1), name="tc_rows_left")    # min(left, rows)
        self.last_col = Signal(range(max(cols or 1, 2)), name="tc_last_col")  # valid columns - 1
        self.last_col_zero = Signal(name="tc_last_col_zero")  # last_col == 0, set with it
        self.final = Signal(name="tc_final")                # left <= rows: the layer's last row tile
        self.pair_ahead = Signal(name="tc_pair_ahead")      # left >= rows + 2: the next row tile has two rows
        # the group's last column tile, the tile after this one is, the row tile's last group: flags set as the
        # down-counters step (compares with constants), so no compare with the far descriptor lies in front of a
        # writer's next-row registers (the OrangeCrab's critical path, 5.1 ns: the ends through `upcoming`)
        self.nt_last = Signal(name="tc_nt_last") if cols else Const(1)
        self.nt_next_last = Signal(name="tc_nt_next_last")
        self.g_last = Signal(name="tc_g_last")
        self._m, self._d, self._e, self._rows, self._cols = m, d, e, rows, cols
        # what a row-tile step loads, worked out from `left` a cycle ahead, so no compare's carry chain lies in
        # front of the step's own logic (the OrangeCrab's critical path, 5.4 ns): [one step ahead, two steps
        # ahead], the second for a step in the cycle right after one (`stepped`), before `left` caught up
        self.stepped = Signal(name="tc_stepped")
        self._ahead = [(Signal(name=f"tc_final_{n}"), Signal(name=f"tc_pair_ahead_{n}"),
                        Signal.like(self.rows_left, name=f"tc_rows_left_{n}")) for n in (1, 2)]
        for n, flags in enumerate(self._ahead, 1):
            m.d.sync += self._row_tile_flags(flags, self.left, n * rows)
        m.d.sync += self.stepped.eq(0)  # set by a row-tile step (below)

    def _row_tile_flags(self, flags, left, skip):
        """`final`, `pair_ahead` and `rows_left` of the row tile whose `left` is left - skip: compares of `left`
        with constants, and the subtract's low bits only where the result lies in 0..rows (rows_left is
        min(left - skip, rows), and 0 past the layer's last pixel)."""
        final, pair_ahead, rows_left = flags
        rows = self._rows
        return [final.eq(left <= skip + rows), pair_ahead.eq(left >= skip + rows + 2),
                rows_left.eq(Mux(left >= skip + rows, rows, Mux(left < skip, 0, (left - skip)[:len(self.rows_left)])))]

    def _load_ahead(self):
        """The next row tile's flags, from the registers that worked them out (two steps ahead right after a step)."""
        (final1, pair1, rows_left1), (final2, pair2, rows_left2) = self._ahead
        return [self.final.eq(Mux(self.stepped, final2, final1)),
                self.pair_ahead.eq(Mux(self.stepped, pair2, pair1)),
                self.rows_left.eq(Mux(self.stepped, rows_left2, rows_left1)), self.stepped.eq(1)]

    def _last_col(self, tile_is_last):
        """The group's last column tile has cols_last columns, every other one all of them."""
        if not self._cols:
            return []
        return [self.last_col.eq(Mux(tile_is_last, self._e.cols_last, self._cols - 1)),
                self.last_col_zero.eq(Mux(tile_is_last, self._e.cols_last == 0, self._cols == 1))]

    def reset(self):
        d, e = self._d, self._e
        flags = [self.g_last.eq(e.groups == 0)]
        if self._cols:  # at tile 0: the next tile is the last if the group has one or two
            flags += [self.nt_last.eq(e.nt == 0), self.nt_next_last.eq(e.nt <= 1)]
        group_step = [] if self.g_off_next is None else [self.g_off_next.eq(self._group_step())]
        return ([s.eq(0) for s in (self.m0, self.g_off, self.ch_off)] + group_step
                + [self.left.eq(d.m), self.g_left.eq(e.groups), self.nt_left.eq(e.nt)]
                + self._row_tile_flags((self.final, self.pair_ahead, self.rows_left), d.m, 0)
                + self._last_col(e.nt == 0) + flags)

    def upcoming(self) -> tuple[Value, Value, Value]:
        """Whether the next tile has no rows left (past the layer's end), whether it has two or more, and its
        last_col: what `step` loads, from flags and small registers only, for a writer that registers its own
        per-value flags alongside."""
        new_row_tile = self.nt_last & self.g_last
        past_end = Mux(new_row_tile, self.final, self.rows_left == 0)
        pair = Mux(new_row_tile, self.pair_ahead, self.rows_left >= 2)
        return past_end, pair, Mux(self.nt_next_last, self._e.cols_last, self._cols - 1)

    def last_tile(self) -> Value:
        """The layer's last tile: its last row tile's last group's last column tile."""
        return self.nt_last & self.g_last & self.final

    def _group_step(self):
        return self._d.group_out_step if self._cols else self._d.ohw

    def step(self):
        """Statements for moving to the next tile."""
        m, d, e, rows = self._m, self._d, self._e, self._rows
        group_step = self._group_step()
        if self._cols:
            m.d.sync += self._last_col(self.nt_next_last)  # of the next tile
            # the tile after the next is the last: from a group's last tile, if the group has one or two; else if
            # two tiles are left after this one (nt_left <= e.nt, so a one-tile group never counts down)
            m.d.sync += [self.nt_last.eq(self.nt_next_last),
                         self.nt_next_last.eq(Mux(self.nt_last, e.nt <= 1, self.nt_left == 2))]
        with m.If(self.nt_last):
            m.d.sync += self.nt_left.eq(e.nt)
            with m.If(self.g_last):
                m.d.sync += [self.g_left.eq(e.groups), self.g_off.eq(0), self.ch_off.eq(0),
                             self.m0.eq(self.m0 + rows), self.left.eq(self.left - rows),
                             self.g_last.eq(e.groups == 0), *self._load_ahead()]
                if self.g_off_next is not None:
                    m.d.sync += self.g_off_next.eq(group_step)
            with m.Else():
                if self.g_off_next is None:
                    next_g_off = self.g_off + group_step
                else:
                    next_g_off = self.g_off_next
                    m.d.sync += self.g_off_next.eq(self.g_off_next + group_step)
                m.d.sync += [self.g_left.eq(self.g_left - 1), self.g_off.eq(next_g_off),
                             self.ch_off.eq(next_g_off), self.g_last.eq(self.g_left == 1)]
        with m.Else():
            m.d.sync += [self.nt_left.eq(self.nt_left - 1), self.ch_off.eq(self.ch_off + d.nt_out_step)]


def beat_layout(hw: HardwarePlan) -> data.StructLayout:
    """A walker beat: every row's activation, the column tile's weights, the tile's last k-step."""
    return data.StructLayout({"a": data.ArrayLayout(Widths(hw).store, hw.rows),
                              "w": data.ArrayLayout(signed(hw.w_bits), hw.cols), "last": 1})


def lane_layout(hw: HardwarePlan) -> data.StructLayout:
    return data.StructLayout({"en": 1, "data": Widths(hw).store, "saturated": 1})


def _more_lanes(hw: HardwarePlan) -> dict:
    """The lanes past the second of a four-lane arena (values at addr + 2 and addr + 3): fields only a plan with
    four write lanes has, so the two-lane design keeps its layouts bit for bit."""
    more = hw.write_lanes - 2
    return {"more": data.ArrayLayout(lane_layout(hw), more)} if more > 0 else {}


def write_layout(hw: HardwarePlan) -> data.StructLayout:
    """A unit's write: a value at `addr` and, if `next.en`, a second at addr + 1 (and on a four-lane arena
    `more[i]` at addr + 2 + i): the interleaved arena takes them in one cycle. All zero outside the unit's own
    layer: the arena's write port is the units' OR."""
    wd = Widths(hw)
    return data.StructLayout({"en": 1, "addr": unsigned(wd.addr), "data": wd.store, "saturated": 1,
                              "next": lane_layout(hw), **_more_lanes(hw)})


def eltwise_lanes(hw: HardwarePlan) -> int:
    """Values the element-wise unit takes per cycle on a `pairs` entry: the arena's lanes, 1 where no entry
    pairs."""
    return hw.write_lanes if any(op.pairs for op in hw.program) else 1


def write_lanes_of(write) -> list:
    """A write (a View of write_layout) as its lanes in address order: the first, `next`, then `more`."""
    first = {"en": write.en, "data": write.data, "saturated": write.saturated}
    more = [write.more[i] for i in range(write.more.shape().length)] if "more" in write.shape().members else []
    return [first, write.next, *more]


def _result_beats(m: Module, results, consume: Signal, registered: bool) -> tuple[Value, Value]:
    """(valid, beat) of the engine's result stream, each beat taken off it when `consume`. `registered`: each beat
    registered as it leaves the engine's FIFO, so the column multiplexer (beat.data[j]) starts from flip-flops and
    not from the FIFO's distributed RAM (the ULX3S-85F's critical path, 8.4 ns); the register takes the next beat
    as this one is consumed, so no cycle is lost."""
    if not registered:
        m.d.comb += results.ready.eq(consume)
        return results.valid, results.payload
    valid, beat = Signal(name="result_valid"), Signal(results.payload.shape(), name="result_beat")
    m.d.comb += results.ready.eq(~valid | consume)
    with m.If(results.ready):
        m.d.sync += [valid.eq(results.valid), beat.eq(results.payload)]
    return valid, beat


class _ResultWriter(wiring.Component):
    """What the engine's result writers share: the descriptor, the result beats in, arena writes out."""

    def __init__(self, hw: HardwarePlan, registered_beats: bool | None = None):
        """`registered_beats`: each beat registered as it leaves the engine's FIFO (_result_beats); None:
        everywhere but on the iCE40, whose UP5K cannot spare a register per bit of a row."""
        self.hw, self.wd, self.registered_beats = hw, Widths(hw), registered_beats
        self.engine_results = TileEngine.result_layout_for(hw.cols, hw.store_bits - 1)
        super().__init__({
            "start": In(1), "d": In(descriptor_layout(hw)), "e": In(ends_layout(hw)),
            "results": In(stream.Signature(self.engine_results)),
            "write": Out(write_layout(hw)),
            "busy": Out(1),  # result beats still to come: the last row tile's rows past M write nothing
        })


class MacWriter(_ResultWriter):
    """Engine results (one output pixel's `cols` channels per beat) -> activation writes, two pixels at a time.

    Neighbouring output pixels of one channel sit at neighbouring addresses
    (CHW), so the writer holds an even row's beat (one cycle, no write) and
    then writes the pair (row i, row i + 1) channel by channel: a tile of
    `rows` x `cols` values takes rows / 2 x (cols + 1) cycles instead of
    rows x cols. A row without a partner (odd row count) is written alone,
    and so is every row on a one-lane arena (`write_lanes` 1) or a one-row
    array.
    """

    def elaborate(self, platform):
        m = Module()
        d, e, iw, hw = self.d, self.e, self.wd.index, self.hw
        tc = TileCounter(m, d, e, iw, hw.rows, hw.cols, platform)
        i = Signal(range(hw.rows + 1))  # the tile's row being written (the even one of a pair)
        # i + 1, i + 2, i + 3 kept beside it, so the next row's compares are one carry chain each, from registers
        i_plus = [Signal(range(hw.rows + 4), name=f"i_plus{k}") for k in (1, 2, 3)]
        # i + 1 == rows and i + 2 == rows, kept beside them: whether the row after this beat (or its pair) ends
        # the tile is a multiplexer of two flip-flops (its compare was the OrangeCrab's critical path, 5.0 ns)
        ends = [Signal(name=f"i_plus{k}_ends") for k in (1, 2)]
        j = Signal(range(hw.cols))
        lane_off = Signal(signed(iw))
        pixel = Signal(signed(iw))
        m.d.comb += pixel.eq(tc.m0 + i)
        busy = Signal()
        m.d.comb += self.busy.eq(busy)
        m.d.sync += self.write.eq(0)  # all zero while not writing (the accelerator ORs the units' writes)
        paired = hw.rows >= 2 and hw.write_lanes >= 2  # else none of the pairing logic is built
        if paired:
            held = Signal(self.engine_results)  # the even row of a pair, taken a cycle before its partner arrives
        # per-beat decisions from registered flags, so `results.ready` (the FIFO's read enable) is a few gates:
        # row_skip == (i >= rows_left), a row past the layer's last output pixel; pair == (i + 1 < rows_left);
        # have: `held` holds row i; col_last == (j == last_col), from `cols_left` (last_col - j) counting down, so
        # its next value is a compare with a constant (j + 1 == last_col had been the OrangeCrab's path, 5.5 ns)
        row_skip, col_last = Signal(name="row_skip"), Signal(name="col_last")
        cols_left = Signal(range(hw.cols), name="cols_left")
        pair, have = (Signal(name="pair"), Signal(name="have")) if paired else (Const(0), Const(0))
        take = Signal()  # this beat is the even row of a pair: hold it
        m.d.comb += take.eq(pair & ~have)
        first_last_col = Mux(e.nt == 0, e.cols_last, hw.cols - 1)  # the layer's first tile's last column
        with m.If(self.start):
            m.d.sync += tc.reset() + [i.eq(0), j.eq(0), lane_off.eq(0), busy.eq(1), row_skip.eq(0),
                                      *(plus.eq(k) for k, plus in enumerate(i_plus, 1)),
                                      *(end.eq(k == hw.rows) for k, end in enumerate(ends, 1)),
                                      col_last.eq(first_last_col == 0), cols_left.eq(first_last_col)]
            if paired:
                m.d.sync += [have.eq(0), pair.eq(d.m >= 2)]
        consume = Signal()
        valid, beat = _result_beats(m, self.results, consume, unless_ice40(self.registered_beats, platform))
        m.d.comb += consume.eq(valid & (row_skip | take | col_last))
        if paired:
            with m.If(valid & take):
                m.d.sync += [held.eq(beat), have.eq(1)]
        with m.If(valid & ~row_skip & ~take):
            m.d.sync += [  # registered: the address adders end here, not in the arena's write path
                self.write.en.eq(1),
                self.write.addr.eq(d.out_base + tc.ch_off + lane_off + pixel),
                self.write.data.eq(Mux(have, held.data[j], beat.data[j]) if paired else beat.data[j]),
                self.write.saturated.eq(Mux(have, held.saturated.bit_select(j, 1), beat.saturated.bit_select(j, 1))
                                        if paired else beat.saturated.bit_select(j, 1)),
                self.write.next.en.eq(have),
                self.write.next.data.eq(beat.data[j]),
                self.write.next.saturated.eq(beat.saturated.bit_select(j, 1)),
            ]
            with m.If(~col_last):
                m.d.sync += [j.eq(j + 1), lane_off.eq(lane_off + d.ohw), cols_left.eq(cols_left - 1),
                             col_last.eq(cols_left == 1)]
        next_past_end, next_pair, next_last_col = tc.upcoming()
        after = Signal.like(i)  # the row after this beat's (or its pair's)
        m.d.comb += after.eq(Mux(have, i_plus[1], i_plus[0]))
        with m.If(consume & ~take):
            m.d.sync += [j.eq(0), lane_off.eq(0), i.eq(after), col_last.eq(tc.last_col_zero),
                         cols_left.eq(tc.last_col),
                         row_skip.eq(Mux(have, i_plus[1] >= tc.rows_left, i_plus[0] >= tc.rows_left)),
                         *(plus.eq(Mux(have, i_plus[0], i) + k + 1) for k, plus in enumerate(i_plus, 1)),
                         ends[0].eq(Mux(have, i_plus[2] == hw.rows, i_plus[1] == hw.rows)),
                         ends[1].eq(Mux(have, i_plus[2] == hw.rows - 1, i_plus[1] == hw.rows - 1))]
            if paired:
                m.d.sync += [have.eq(0), pair.eq(Mux(have, i_plus[2] < tc.rows_left, i_plus[1] < tc.rows_left))]
            with m.If(Mux(have, ends[1], ends[0])):  # after == rows
                m.d.sync += [i.eq(0), row_skip.eq(next_past_end), col_last.eq(next_last_col == 0),
                             cols_left.eq(next_last_col), *(plus.eq(k) for k, plus in enumerate(i_plus, 1)),
                             *(end.eq(k == hw.rows) for k, end in enumerate(ends, 1))]
                if paired:
                    m.d.sync += pair.eq(next_pair)
                tc.step()
                with m.If(tc.last_tile()):
                    m.d.sync += busy.eq(0)
        return m


class QuadMacWriter(_ResultWriter):
    """MacWriter for a four-lane arena: up to four neighbouring output pixels (rows i .. i + 3 of a tile) written
    channel by channel, so a tile of `rows` x `cols` values takes rows / 4 x (cols + 3) cycles.

    Why: a short-K conv (ResNet-8's stem, K = 27, and its 1x1 stride-2 skips, K = 16 and 32) on a 4x16 array
    was bound by its pair writes (34 cycles a tile against 27 and 16 of MACs). The writer holds a group's first
    beats (`have` of them, a cycle each, no write) while the next row is valid in the tile, then writes the
    group with the last beat: lane k from held[k] for k < have, lane `have` from the beat. Rows past the
    layer's last pixel are taken and dropped, one a cycle. What the next beat is (held, dropped, or the
    group's last) and whether it ends the tile are registers worked out as the previous beat is taken, so the
    results' ready is gates from flip-flops (the compares of i + have had been ResNet-8's critical path on the
    ULX3S-85F, 10.3 ns). Built only for a four-lane arena (HardwarePlan.write_lanes 4) on two rows or more;
    the two-lane MacWriter keeps its netlist.
    """

    def elaborate(self, platform):
        m = Module()
        d, e, iw, hw = self.d, self.e, self.wd.index, self.hw
        lanes = 4
        tc = TileCounter(m, d, e, iw, hw.rows, hw.cols, platform)
        i = Signal(range(hw.rows + 1))            # the tile's first row of the group being gathered
        have = Signal(range(lanes))               # beats held: rows i .. i + have - 1
        held = [Signal(self.engine_results, name=f"held{k}") for k in range(lanes - 1)]
        row = Signal(range(hw.rows + 1))          # the next beat's row: i + have
        # the next beat: past the layer's last pixel (dropped); held (the row after it is valid, in the tile, and
        # the group has room); the tile's last row
        row_skip, take, row_last = Signal(), Signal(), Signal()
        j = Signal(range(hw.cols))
        lane_off = Signal(signed(iw))
        col_last = Signal()                       # j == the tile's last column
        pixel = Signal(signed(iw))
        busy = Signal()
        m.d.comb += [self.busy.eq(busy), pixel.eq(tc.m0 + i)]
        m.d.sync += self.write.eq(0)  # all zero while not writing (the accelerator ORs the units' writes)

        def next_row(r, holding):
            """The flags of the beat at row r (within this tile, r < rows), `holding` beats held before it."""
            return [row.eq(r), row_skip.eq(r >= tc.rows_left), row_last.eq(r == hw.rows - 1),
                    take.eq(holding & (r + 1 < tc.rows_left))]

        with m.If(self.start):
            m.d.sync += tc.reset() + [i.eq(0), have.eq(0), row.eq(0), j.eq(0), lane_off.eq(0), busy.eq(1),
                                      row_skip.eq(0), row_last.eq(hw.rows == 1), take.eq(d.m >= 2),
                                      col_last.eq(Mux(e.nt == 0, e.cols_last, hw.cols - 1) == 0)]
        consume = Signal()
        valid, beat = _result_beats(m, self.results, consume, unless_ice40(self.registered_beats, platform))
        m.d.comb += consume.eq(valid & (row_skip | take | col_last))
        with m.If(valid & take):
            m.d.sync += [have.eq(have + 1), *next_row(row + 1, have < lanes - 2)]
            for k, reg in enumerate(held):
                with m.If(have == k):
                    m.d.sync += reg.eq(beat)
        with m.If(valid & ~row_skip & ~take):
            m.d.sync += [self.write.en.eq(1), self.write.addr.eq(d.out_base + tc.ch_off + lane_off + pixel)]
            for k, lane in enumerate(write_lanes_of(self.write)):
                data, saturated = beat.data[j], beat.saturated.bit_select(j, 1)
                if k < lanes - 1:  # a held row where k < have
                    data = Mux(have > k, held[k].data[j], data)
                    saturated = Mux(have > k, held[k].saturated.bit_select(j, 1), saturated)
                if k == 0:
                    m.d.sync += [self.write.data.eq(data), self.write.saturated.eq(saturated)]
                else:
                    m.d.sync += [lane["en"].eq(have >= k), lane["data"].eq(data), lane["saturated"].eq(saturated)]
            with m.If(~col_last):
                m.d.sync += [j.eq(j + 1), lane_off.eq(lane_off + d.ohw), col_last.eq(j + 1 == tc.last_col)]
        with m.If(consume & ~take):  # the group written (or a row dropped): on to the row after it
            m.d.sync += [i.eq(row + 1), have.eq(0), j.eq(0), lane_off.eq(0), col_last.eq(tc.last_col == 0),
                         *next_row(row + 1, 1)]
            with m.If(row_last):
                past_end, two_rows, next_last_col = tc.upcoming()
                m.d.sync += [i.eq(0), row.eq(0), col_last.eq(next_last_col == 0), row_skip.eq(past_end),
                             row_last.eq(hw.rows == 1), take.eq(two_rows & ~past_end)]
                tc.step()
                with m.If(tc.last_tile()):
                    m.d.sync += busy.eq(0)
        return m


class RowWriter(_ResultWriter):
    """Engine results of an unrolled depthwise layer -> activation writes, along each row's segment.

    Array row r holds one row segment: `unroll` neighbouring output pixels of
    the tile's channel (the group), one per column (`tail` in an output row's
    last segment). A row tile's segments follow each other in raster order,
    so one group's are one run of neighbouring addresses: the run is written
    as many pixels per cycle as the arena has lanes (1, 2 or 4), a cycle's
    pixels spanning segments (a segment's last pixels wait in `pend` for the
    next segment's first; only the run's last cycle writes fewer).
    The segment's address advances by `unroll` per row and by `tail` past an
    output row's end; each group of the row tile walks the same segments, so
    the row tile's first segment is kept (`tile_seg`) and taken again. Built
    only where the plan unrolls a layer (HardwarePlan.unrolls).
    """

    def elaborate(self, platform):
        m = Module()
        d, e, iw, hw = self.d, self.e, self.wd.index, self.hw
        lanes = hw.write_lanes  # an unrolled layer spreads over two columns or more: never a one-column array
        tc = TileCounter(m, d, e, iw, hw.rows, hw.cols, platform)
        i = Signal(range(hw.rows))              # the tile's row (segment) being written
        tile_end = Signal()                     # i == rows - 1
        row_skip = Signal()                     # i >= rows_left: a row past the layer's last segment
        more = Signal()                         # a valid row follows this one in the run (this row tile and group)
        j = Signal(range(hw.cols + lanes))      # the next column to write
        last_j = Signal(range(hw.cols))         # the segment's last column: unroll - 1, or tail - 1
        left = Signal(range(hw.cols + 1))       # columns still to write in this beat: last_j - j + 1
        pend = Signal(range(lanes))             # pixels of earlier segments waiting to be written with this one's
        pend_data = [Signal.like(self.write.data, name=f"pend_data{q}") for q in range(lanes - 1)]
        pend_saturated = [Signal(name=f"pend_saturated{q}") for q in range(lanes - 1)]
        seg, seg_ox, seg_end = Signal(signed(iw)), Signal.like(d.ow), Signal()  # the row's segment: address, x, last
        tile_seg, tile_ox, tile_end_seg = Signal(signed(iw)), Signal.like(d.ow), Signal()  # the row tile's first
        busy = Signal()
        m.d.comb += self.busy.eq(busy)
        m.d.sync += self.write.eq(0)

        def segment(addr, ox, at_end):
            """Statements entering the segment at (addr, ox, at_end)."""
            last = Mux(at_end, e.tail, e.cols_last)
            return [seg.eq(addr), seg_ox.eq(ox), seg_end.eq(at_end), j.eq(0), last_j.eq(last), left.eq(last + 1)]

        # the segment after this row's: `unroll` pixels on, or past the output row's end to the next row's start
        next_seg = Signal(signed(iw))
        next_ox = Signal.like(d.ow)
        next_end = Signal()
        m.d.comb += [next_seg.eq(seg + Mux(seg_end, d.tail, d.unroll)), next_ox.eq(Mux(seg_end, 0, seg_ox + 1)),
                     next_end.eq(Mux(seg_end, e.ow == 0, seg_ox + 1 == e.ow))]
        with m.If(self.start):
            m.d.sync += tc.reset() + segment(0, 0, e.ow == 0) + [
                tile_seg.eq(0), tile_ox.eq(0), tile_end_seg.eq(e.ow == 0), pend.eq(0),
                i.eq(0), tile_end.eq(hw.rows == 1), row_skip.eq(0), more.eq((hw.rows >= 2) & (d.m >= 2)), busy.eq(1)]
        consume = Signal()
        valid, beat = _result_beats(m, self.results, consume, unless_ice40(self.registered_beats, platform))
        base = Signal(signed(iw + 1))
        m.d.comb += base.eq(d.out_base + tc.ch_off + seg)
        if lanes == 1:
            m.d.comb += consume.eq(valid & (row_skip | (left == 1)))
            with m.If(valid & ~row_skip):
                m.d.sync += [self.write.en.eq(1), self.write.addr.eq(base + j), self.write.data.eq(beat.data[j]),
                             self.write.saturated.eq(beat.saturated.bit_select(j, 1)),
                             j.eq(j + 1), left.eq(left - 1)]
        else:
            self._write_lanes(m, lanes, valid, beat, consume, base, j, left, pend, pend_data, pend_saturated, more,
                              row_skip)
        with m.If(consume):
            with m.If(~tile_end):
                m.d.sync += segment(next_seg, next_ox, next_end) + [
                    i.eq(i + 1), tile_end.eq(i + 2 == hw.rows), row_skip.eq(i + 1 >= tc.rows_left),
                    more.eq(i + 2 < tc.rows_left)]
            with m.Else():
                next_past_end, next_pair, _ = tc.upcoming()
                m.d.sync += [i.eq(0), tile_end.eq(hw.rows == 1), row_skip.eq(next_past_end),
                             more.eq(next_pair if hw.rows >= 2 else 0)]
                with m.If(tc.g_last):  # on to the next row tile: its first segment follows this row's
                    m.d.sync += segment(next_seg, next_ox, next_end) + [
                        tile_seg.eq(next_seg), tile_ox.eq(next_ox), tile_end_seg.eq(next_end)]
                with m.Else():  # the row tile's next group: its segments again
                    m.d.sync += segment(tile_seg, tile_ox, tile_end_seg)
                tc.step()
                with m.If(tc.g_last & tc.final):
                    m.d.sync += busy.eq(0)
        return m

    def _write_lanes(self, m: Module, lanes: int, valid, beat, consume, base, j, left, pend, pend_data,
                     pend_saturated, more, row_skip) -> None:
        """Two or more lanes: each cycle writes `lanes` neighbouring pixels, the first `pend` of them left over
        from earlier segments, then the beat's from column j on; where fewer than `lanes` pixels are left in the
        beat and a valid row follows, they join `pend` as the beat is taken (all of them when the beat and `pend`
        together are fewer than `lanes`: a cycle that writes nothing), so a run of n pixels takes ceil(n / lanes)
        writing cycles. `pend` > 0 only at a beat's first column (j = 0)."""
        cols = self.hw.cols
        total = Signal(range(cols + lanes))        # pixels ready: pending, then the beat's from column j
        writes, spill = Signal(), Signal()         # this cycle writes; what it leaves of the beat goes to `pend`
        m.d.comb += [total.eq(pend + left), writes.eq((total >= lanes) | ~more), spill.eq(more & (total < 2 * lanes)),
                     consume.eq(valid & (row_skip | (total <= lanes) | spill))]
        column = Signal(signed(len(j) + 2))        # the beat column of the cycle's first lane (j - pend)
        m.d.comb += column.eq(j - pend)
        data, saturated = Array(beat.data[c] for c in range(cols)), beat.saturated

        def beat_pixel(index):
            """The beat's column `index` (a value; out of range only where the caller does not use it)."""
            at = Signal(range(cols), name="beat_column")
            m.d.comb += at.eq(index)
            return data[at], saturated.bit_select(at, 1)

        with m.If(valid & ~row_skip & writes):
            m.d.sync += self.write.addr.eq(base + column)
            for k, lane in enumerate(write_lanes_of(self.write)[:lanes]):
                value, sat = beat_pixel(column + k)
                if k < lanes - 1:
                    value, sat = Mux(pend > k, pend_data[k], value), Mux(pend > k, pend_saturated[k], sat)
                m.d.sync += [lane["en"].eq(total > k), lane["data"].eq(value), lane["saturated"].eq(sat)]
            with m.If(~consume):  # the beat has `lanes` or more pixels past this write: on along it
                m.d.sync += [j.eq(j + lanes - pend), left.eq(left - (lanes - pend)), pend.eq(0)]
        with m.If(valid & ~row_skip & consume):
            shift = Mux(writes, lanes, 0)          # the pixels this cycle writes, if it does
            m.d.sync += pend.eq(Mux(spill, total - shift, 0))
            for q in range(lanes - 1):
                value, sat = beat_pixel(column + q + shift)
                keep = ~writes & (pend > q)        # a pixel already pending stays where nothing is written
                m.d.sync += [pend_data[q].eq(Mux(keep, pend_data[q], value)),
                             pend_saturated[q].eq(Mux(keep, pend_saturated[q], sat))]


class MaxUnit(wiring.Component):
    """Row-wise running max over a window's k-steps, then the valid output pixels written two per cycle (one on a
    one-lane arena)."""

    def __init__(self, hw: HardwarePlan):
        self.hw, self.wd = hw, Widths(hw)
        super().__init__({
            "start": In(1), "d": In(descriptor_layout(hw)), "e": In(ends_layout(hw)),
            "beats": In(stream.Signature(beat_layout(hw))),
            "write": Out(write_layout(hw)),
        })

    def elaborate(self, platform):
        m = Module()
        hw, d, iw = self.hw, self.d, self.wd.index
        best = [Signal(self.wd.store, name=f"best{i}") for i in range(hw.rows)]
        first = Signal(init=1)
        full = Signal()  # `best` holds a finished window waiting to be written
        # a beat is registered before its compares, so they start from flip-flops and not from the walker's
        # FIFO's distributed RAM (the OrangeCrab's critical path, 5.3 ns); it waits there while `full`
        staged, staged_last = Signal(name="max_staged"), Signal(name="max_staged_last")
        staged_a = [Signal(self.wd.store, name=f"max_staged_a{i}") for i in range(hw.rows)]
        compare = Signal()
        m.d.comb += [compare.eq(staged & ~full), self.beats.ready.eq(~staged | ~full)]
        with m.If(self.beats.valid & self.beats.ready):
            m.d.sync += [staged.eq(1), staged_last.eq(self.beats.payload.last)]
            m.d.sync += [reg.eq(self.beats.payload.a[i]) for i, reg in enumerate(staged_a)]
        with m.Elif(compare):
            m.d.sync += staged.eq(0)
        with m.If(compare):
            for i, a in enumerate(staged_a):
                m.d.sync += best[i].eq(Mux(first | (a > best[i]), a, best[i]))
            m.d.sync += [first.eq(staged_last), full.eq(staged_last)]

        e = self.e
        tc = TileCounter(m, d, e, iw, hw.rows, None, platform)
        lane = Signal(range(hw.rows))
        pixel = Signal(signed(iw))
        m.d.comb += pixel.eq(tc.m0 + lane)
        m.d.sync += self.write.eq(0)  # all zero while not writing (the accelerator ORs the units' writes)
        with m.If(self.start):
            m.d.sync += tc.reset() + [lane.eq(0), first.eq(1), full.eq(0), staged.eq(0)]
        step = min(hw.write_lanes, 2)  # output pixels per cycle: neighbouring pixels of one channel, neighbouring
        # addresses (a four-lane arena's third and fourth lanes serve the row writer only)
        with m.Elif(full):
            maxima = Cat(*best, best[-1])  # padded: word lane + 1 exists for every lane
            with m.If(lane < tc.rows_left):  # registered, like the MAC writer's
                m.d.sync += [self.write.en.eq(1), self.write.addr.eq(d.out_base + tc.g_off + pixel),
                             self.write.data.eq(maxima.word_select(lane, hw.store_bits)),
                             self.write.saturated.eq(0)]  # a max never saturates
                if step == 2:
                    m.d.sync += [self.write.next.en.eq(lane + 1 < tc.rows_left), self.write.next.saturated.eq(0),
                                 self.write.next.data.eq(maxima.word_select(lane + 1, hw.store_bits))]
            with m.If((lane + step >= hw.rows) | (lane + step >= tc.rows_left)):
                m.d.sync += [lane.eq(0), full.eq(0)]
                tc.step()
            with m.Else():
                m.d.sync += lane.eq(lane + step)
        return m


class ParamReader(wiring.Component):
    """One parameter word (per-column bias and shift) per tile, in the walker's tile order.

    The memory read (`latency` enabled cycles: 1 for a LUT ROM, the plan's read latency for a BankedMemory),
    then a register, so the requantizer's bias add starts from a flip-flop and not from a block RAM's
    clock-to-out (the FC autoencoder's critical path on the ULX3S-85F). The stages advance together; a tile's
    word waits in the register long before its first row drains, so no cycle is lost.
    """

    def __init__(self, hw: HardwarePlan, latency: int = 1):
        self.hw, self.wd, self.latency = hw, Widths(hw), latency
        super().__init__({
            "start": In(1), "d": In(descriptor_layout(hw)), "e": In(ends_layout(hw)),
            "rd_en": Out(1), "addr": Out(range(len(hw.param_words))), "rd_data": In(unsigned(hw.param_width)),
            "params": Out(stream.Signature(unsigned(hw.param_width))),
            "ready_next": In(1),  # the value params.ready takes after the coming edge (the engine's)
        })

    def elaborate(self, platform):
        m = Module()
        d, e = self.d, self.e
        active = Signal()
        read_valid = [Signal(name=f"read_valid{i}") for i in range(self.latency)]  # beside the reads in flight
        # both loops count down to registered `last` flags: the compares of t and mt with the ends had led into
        # the address's reset (an OrangeCrab-25F critical path, 5.3 ns)
        t = LoopCounter(self.wd.loop("tiles_per_mt"), e.tiles_per_mt, "param_t", counts_up=False)
        mt = LoopCounter(self.wd.loop("mtiles"), e.mtiles, "param_mt", counts_up=False)
        # advance == ~params.valid | params.ready, a register worked out a cycle ahead: it enables the ROM's
        # blocks and bank registers (hundreds of bits), and the engine's readiness had reached them through a
        # long route (ResNet-8's critical path on the ULX3S-85F, 10.2 ns)
        advance_en = LookaheadEnable("param_advance")
        advance = advance_en.fanout
        valid_next = Mux(advance_en.local, read_valid[-1], self.params.valid)
        advance_en.update(m, ~valid_next | self.ready_next)
        m.d.comb += self.rd_en.eq(advance)
        with m.If(advance):
            m.d.sync += [read_valid[0].eq(active), self.params.valid.eq(read_valid[-1]),
                         self.params.payload.eq(self.rd_data)]
            m.d.sync += [later.eq(earlier) for earlier, later in zip(read_valid, read_valid[1:])]
        # the address is a register kept equal to p_base + t (no adder in front of the ROM's address pins: the FC
        # autoencoder's critical path, 7.0 + 2.7 ns of routing around that adder)
        with m.If(self.start):
            m.d.sync += [active.eq(1), self.addr.eq(d.p_base)] + t.restart() + mt.restart()
        with m.Elif(active & advance):
            with m.If(t.last):
                m.d.sync += t.restart() + mt.step() + [self.addr.eq(d.p_base)]
                with m.If(mt.last):
                    m.d.sync += active.eq(0)
            with m.Else():
                m.d.sync += t.step() + [self.addr.eq(self.addr + 1)]
        return m


class EltwiseUnit(wiring.Component):
    """Add, a standalone activation, a concat input's copy, nearest upsample, table lookup, and the output stream.

    A registered pipeline, so no stage holds more than one adder or compare
    chain: stage 0 reads the arena (a repeating walk: each value `up` times
    along x, each row `up` times along y; `up` = 1, `w` = 1 read one value
    after the other; the address after each one is worked out beside it, so
    a pair read meets one adder before the memory's address register), stage
    `hw.read_latency` has the arena's data, the next
    (`data_stage`) registers it and addresses the table memory, the next sums
    (a << sa) + (b << sb), the next PIPELINED_LATENCY stages requantize
    (`Requantizer(pipelined=True)`), the last writes the requantized value
    or the table's entry at out_base + out_off + index. The output stream
    takes stage `data_stage`'s values.

    An entry with `pairs` set (a plain walk, no table, not streamed) takes as
    many values per cycle as the arena has lanes (two, or four): the arena
    reads them in one go (`a_next`, `b_next`, and `a_more`, `b_more` on a
    four-lane arena), each lane sums and requantizes beside the first, and
    the write carries them all (`write.next`, `write.more` at the addresses
    after). Built only for a plan with such an entry.
    """

    def __init__(self, hw: HardwarePlan):
        self.hw, self.wd = hw, Widths(hw)
        self.data_stage = hw.read_latency + 1               # the stage holding the registered arena data
        self.latency = self.data_stage + 2 + PIPELINED_LATENCY  # stages from the read to the write
        self.lanes = eltwise_lanes(hw)
        later = self.lanes - 2  # the lanes past the second: the addresses after a_after (and their values)
        more = {"a_later": Out(data.ArrayLayout(unsigned(self.wd.addr), later)),
                "b_later": Out(data.ArrayLayout(unsigned(self.wd.addr), later)),
                "a_more": In(data.ArrayLayout(self.wd.store, later)),
                "b_more": In(data.ArrayLayout(self.wd.store, later))} if later > 0 else {}
        super().__init__({**more,
            "start": In(1), "d": In(descriptor_layout(hw)), "e": In(ends_layout(hw)),
            "rd_en": Out(1), "rd_en_next": Out(1),  # rd_en, and the value it takes after the coming edge
            "a_addr": Out(unsigned(self.wd.addr)), "b_addr": Out(unsigned(self.wd.addr)),
            "a_after": Out(unsigned(self.wd.addr)), "b_after": Out(unsigned(self.wd.addr)),  # a_addr + 1, b_addr + 1
            "a_data": In(self.wd.store), "b_data": In(self.wd.store),
            "a_next": In(self.wd.store), "b_next": In(self.wd.store),  # the values after a_addr, b_addr
            "lut_addr": Out(unsigned(max(_bits(len(hw.lut_words)), 1))), "lut_data": In(self.wd.store),
            "write": Out(write_layout(hw)),
            "outputs": Out(stream.Signature(data.StructLayout({"data": self.wd.store, "last": 1}))),
        })

    def operand_read(self, replica, second: bool) -> dict:
        """Part addresses of `replica` that read operand a (b where `second`) as this unit's lanes take it: a pair
        (the address and the one after it), or four on a four-lane walk."""
        addr, after = (self.b_addr, self.b_after) if second else (self.a_addr, self.a_after)
        if self.lanes <= 2:
            return replica.pair_read(addr, after)
        later = self.b_later if second else self.a_later
        return replica.lanes_read(addr, [after, *(later[k] for k in range(self.lanes - 2))])

    def _read_walk(self, m: Module, advance, idx: Signal) -> Signal:
        """The read offset: one value after the other, or each value and row repeated `up` times (built only
        for a plan that upsamples)."""
        d, e, iw = self.d, self.e, self.wd.index
        if all(op.up == 1 for op in self.hw.program):
            return idx
        rd, row_start = Signal(signed(iw)), Signal(signed(iw))
        sub_x, x_in, sub_y = Signal(self.wd.loop("up")), Signal(self.wd.loop("w")), Signal(self.wd.loop("up"))
        with m.If(self.start):
            m.d.sync += [rd.eq(0), row_start.eq(0), sub_x.eq(0), x_in.eq(0), sub_y.eq(0)]
        with m.Elif(advance):
            with m.If(sub_x != e.up):
                m.d.sync += sub_x.eq(sub_x + 1)
            with m.Else():
                m.d.sync += sub_x.eq(0)
                with m.If(x_in != e.w):
                    m.d.sync += [x_in.eq(x_in + 1), rd.eq(rd + 1)]
                with m.Else():
                    m.d.sync += x_in.eq(0)
                    with m.If(sub_y != e.up):
                        m.d.sync += [sub_y.eq(sub_y + 1), rd.eq(row_start)]
                    with m.Else():
                        m.d.sync += [sub_y.eq(0), row_start.eq(row_start + d.w), rd.eq(row_start + d.w)]
        return rd

    def elaborate(self, platform):
        m = Module()
        hw, d, e, iw = self.hw, self.d, self.e, self.wd.index
        lanes = self.lanes
        rqs = []
        for lane in range(lanes):
            rqs.append(Requantizer(hw.acc_bits, hw.store_bits - 1, hw.max_right, hw.max_left,
                                   activation_support(hw), pipelined=True))
            m.submodules[f"requant{lane}"] = rqs[-1]
        rq = rqs[0]
        streaming = d.kind == OUTPUT
        pairs = d.pairs[0] if lanes >= 2 else Const(0)
        paired_step = max(lanes, 2)  # values a `pairs` entry takes per cycle (never taken where lanes is 1)
        advance_en = LookaheadEnable("ew_advance")
        advance = advance_en.fanout
        data_stage = self.data_stage
        valid = [Signal(name=f"ew_valid{i}") for i in range(self.latency + 1)]  # valid[i]: stage i holds a value
        # lane k's valid per stage, for k >= 1 (valid2: the second lane's)
        valid2 = [Signal(name=f"ew_valid2_{i}") for i in range(self.latency + 1)] if lanes >= 2 else []
        valid_more = [[Signal(name=f"ew_valid{k + 3}_{i}") for i in range(self.latency + 1)]
                      for k in range(lanes - 2)]
        # last: whether stages 0 to data_stage hold the walk's final value
        active, idx, last = valid[0], Signal(signed(iw)), Signal(data_stage + 1)
        rd = self._read_walk(m, active & advance, idx)
        if lanes >= 2:
            rd = Mux(pairs, idx, rd)
            # pairs: the last cycle takes the final one to `lanes` values (lane k only while idx + k < n_out)
            if lanes == 2:
                m.d.comb += valid2[0].eq(active & pairs & (idx != e.n_out))
            else:
                # n_out - 1 - idx, kept beside idx, so lane k's valid and the walk's end compare a register with
                # constants (idx + k + 2 <= e.n_out had put two adders and a compare in front of the walk's valid
                # register: ResNet-8's critical path on the ULX3S-85F, 10.1 ns, 99.0 MHz)
                left = Signal(signed(iw + 1), name="ew_left")
                with m.If(self.start):
                    m.d.sync += left.eq(e.n_out)
                with m.Elif(active & advance):
                    m.d.sync += left.eq(left - Mux(pairs, lanes, 1))
                m.d.comb += [v[0].eq(active & pairs & (left >= k + 1)) for k, v in enumerate([valid2, *valid_more])]
        # the pipeline stalls only while the output stream (fed by stage data_stage, through a FIFO) waits; arena
        # writes never stall. The stall enables every block RAM of two arena replicas, so it is a register worked
        # out a cycle ahead: ~(valid[data_stage] & streaming) | out.i.ready after the coming edge (the descriptor is
        # constant while any stage holds a value)
        m.submodules.out = out = StreamFIFO(self.outputs.payload.shape())
        wiring.connect(m, out.o, wiring.flipped(self.outputs))
        advance_en.update(m, ~(Mux(advance_en.local, valid[data_stage - 1], valid[data_stage]) & streaming)
                          | out.ready_next)
        m.d.comb += [self.rd_en.eq(advance), self.rd_en_next.eq(advance_en.next),
                     self.a_addr.eq(d.in_base + rd), self.b_addr.eq(d.in2_base + rd),
                     self.a_after.eq(d.in_base + rd + 1), self.b_after.eq(d.in2_base + rd + 1),
                     last[0].eq(Mux(pairs, idx + (paired_step - 1) >= e.n_out, idx == e.n_out)
                                if lanes <= 2 else Mux(pairs, left < lanes, left == 0))]
        if lanes > 2:  # beside a_after: one adder after the base's
            m.d.comb += [self.a_later[k].eq(d.in_base + rd + (2 + k)) for k in range(lanes - 2)]
            m.d.comb += [self.b_later[k].eq(d.in2_base + rd + (2 + k)) for k in range(lanes - 2)]
        with m.If(self.start):
            m.d.sync += [active.eq(1), idx.eq(0)]
        with m.Elif(active & advance):
            m.d.sync += idx.eq(idx + Mux(pairs, paired_step, 1))
            with m.If(last[0]):
                m.d.sync += active.eq(0)

        # per lane: stage data_stage, the arena's outputs registered; data_stage + 1, the sum, then the
        # requantizer's stages
        def per_lane(shape, name):
            return [Signal(shape, name=f"{name}{i}") for i in range(lanes)]

        a2, b2, y = per_lane(self.wd.store, "a2_"), per_lane(self.wd.store, "b2_"), per_lane(self.wd.store, "y")
        acc3, sat = per_lane(signed(hw.acc_bits), "acc3_"), per_lane(1, "sat")
        with m.If(advance):
            m.d.sync += [valid[i].eq(valid[i - 1] if i <= data_stage else valid[i - 1] & ~streaming)  # streamed:
                         for i in range(1, self.latency + 1)]                                        # not written
            m.d.sync += [v[i].eq(v[i - 1]) for v in (valid2, *valid_more) for i in range(1, len(v))]
            m.d.sync += [last[i].eq(last[i - 1]) for i in range(1, data_stage + 1)]
            inputs = [(self.a_data, self.b_data), (self.a_next, self.b_next)]
            inputs += [(self.a_more[k], self.b_more[k]) for k in range(lanes - 2)]
            for lane, (a_in, b_in) in enumerate(inputs[:lanes]):
                m.d.sync += [a2[lane].eq(a_in), b2[lane].eq(b_in),
                             acc3[lane].eq((a2[lane] << d.sa.as_unsigned())
                                           + Mux(d.has_b, b2[lane] << d.sb.as_unsigned(), 0)),
                             y[lane].eq(rqs[lane].y), sat[lane].eq(rqs[lane].saturated)]
        for lane in range(lanes):
            r = rqs[lane]
            m.d.comb += [r.en.eq(advance), r.acc.eq(acc3[lane]), r.bias.eq(0), r.shift.eq(d.shift),
                         r.neg_shift.eq(d.neg_shift), r.clamp_lo.eq(d.clamp_lo), r.clamp_hi.eq(d.clamp_hi),
                         r.lo.eq(d.lo), r.hi.eq(d.hi)]
        m.d.comb += [
            self.lut_addr.eq(d.lut_base + (a2[0] >> d.lut_shift.as_unsigned())),
            out.i.valid.eq(valid[data_stage] & streaming), out.i.payload.data.eq(a2[0]),
            out.i.payload.last.eq(last[data_stage]),
        ]
        # the table's entry for stage data_stage + 1's value, carried along beside the requantizer
        if self.hw.lut_words:
            carried = [Signal(self.wd.store, name=f"lut_carry{i}") for i in range(rq.latency)]
            with m.If(advance):
                m.d.sync += [carried[0].eq(self.lut_data)] + [carried[i].eq(carried[i - 1])
                                                              for i in range(1, rq.latency)]
                with m.If(d.lut[0]):
                    m.d.sync += [y[0].eq(carried[-1]), sat[0].eq(0)]

        out_addr = Signal(unsigned(self.wd.addr))  # incremental: writes land in index order
        with m.If(self.start):
            m.d.sync += out_addr.eq(d.out_base + d.out_off)
        with m.Elif(valid[-1]):
            m.d.sync += out_addr.eq(out_addr + Mux(pairs, paired_step, 1))
        with m.If(valid[-1]):
            m.d.comb += [self.write.en.eq(1), self.write.addr.eq(out_addr), self.write.data.eq(y[0]),
                         self.write.saturated.eq(sat[0])]
            if lanes >= 2:
                m.d.comb += [self.write.next.en.eq(valid2[-1]), self.write.next.data.eq(y[1]),
                             self.write.next.saturated.eq(sat[1])]
                for k, v in enumerate(valid_more):
                    m.d.comb += [self.write.more[k].en.eq(v[-1]), self.write.more[k].data.eq(y[2 + k]),
                                 self.write.more[k].saturated.eq(sat[2 + k])]
            else:
                m.d.comb += self.write.next.eq(0)
        return m


def trace_layout(hw: HardwarePlan) -> data.StructLayout:
    """A landed write: `data` at flat index `index` of layer `layer`, `next` at index + 1 when its `en` is set
    (and on a four-lane arena `more[i]` at index + 2 + i)."""
    return data.StructLayout({"valid": 1, "layer": unsigned(_bits(len(hw.layer_names))),
                              "index": unsigned(Widths(hw).addr), "data": Widths(hw).store, "saturated": 1,
                              "next": lane_layout(hw), **_more_lanes(hw)})


@dataclass(frozen=True)
class _ReadPort:
    """A ROM's read port, of a plain Memory or a BankedMemory: `latency` enabled cycles from `addr` to `data`."""
    addr: Any
    en: Any
    data: Any
    latency: int


@dataclass(frozen=True)
class _Memories:
    prog_rd: Any
    weights: BankedMemory
    p_rd: _ReadPort
    lut_rd: Any        # None when the plan has no lookup tables
    arena: list        # InterleavedMemory replicas, one (pair) read port each, one shared (pair) write


@dataclass(frozen=True)
class _Sequencer:
    d: Any             # the running layer's descriptor (a View of descriptor_layout)
    e: Any             # its loop ends minus 1 (a View of ends_layout), valid with `start`
    start: Signal      # one-hot by LayerOp kind, one cycle: start the unit of d.kind (registered: no decode after it)
    start_next: Signal  # the value `start` takes after the coming edge
    completion: Signal  # output values written or streamed this cycle (0 to the arena's lanes, at least 2)
    macw: "MacWriter"
    roww: "RowWriter | None"  # where the plan unrolls a layer
    kind_is: Signal     # the running kind, one-hot by LayerOp kind (a register beside `d`)
    walking: Signal     # the running kind is mac or max (a register beside `d`)
    unrolled: Signal    # the running entry is an unrolled layer (a register beside `d`)
    unrolled_next: Signal  # the value `unrolled` takes after the coming edge


@dataclass(frozen=True)
class _Units:
    walker: WindowWalker
    preader: ParamReader
    engine: TileEngine
    maxu: MaxUnit
    ew: EltwiseUnit


LUT_ROM_DEPTH = 16  # words a LUT4 holds per bit


class Accelerator(wiring.Component):
    def __init__(self, hw: HardwarePlan):
        self.hw, self.wd = hw, Widths(hw)
        self.trace_layout = trace_layout(hw)
        ports = {
            "inputs": In(stream.Signature(self.wd.store)),
            "outputs": Out(stream.Signature(data.StructLayout({"data": self.wd.store, "last": 1}))),
            "trace_out": Out(self.trace_layout),
        }
        if hw.weights_spram:  # the weight image's bytes (HardwarePlan.weight_image), before the first input
            ports["load"] = In(stream.Signature(8))
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        mem = self._memories(m, family_of(platform))
        seq = self._sequencer(m, mem)
        units = self._units(m, seq, mem)
        self._walker_paths(m, seq, mem, units)
        self._arena_reads(m, seq, mem, units)
        self._writes(m, seq, mem, units, self._input_loader(m, seq, mem), platform)
        return m

    def _memories(self, m: Module, family: str | None) -> _Memories:
        """Program, weight and parameter ROMs and the arena replicas, all initialised from the plan."""
        hw, wd = self.hw, self.wd
        m.submodules.program = program = Memory(shape=unsigned(descriptor_layout(hw).size), depth=len(hw.program),
                                                init=descriptor_words(hw))
        if hw.weights_spram:  # written by `_weight_loader`
            weights = BankedMemory(unsigned(hw.weight_word_width), len(hw.weight_words), latency=hw.read_latency,
                                   single_port=True)
        else:
            weights = BankedMemory(unsigned(hw.weight_word_width), len(hw.weight_words), init=hw.weight_words,
                                   writable=False, latency=hw.read_latency)
        m.submodules.weights = weights
        # A parameter ROM (one word per column tile, hundreds of bits wide) deeper than a LUT4's 16 entries is a
        # BankedMemory, on ECP5 DP16KD blocks with their output register: left to yosys, ResNet-8's 23 x 496-bit
        # ROM became LUT5s whose shared address and wide outputs congested the router (70478 arcs still to route
        # after 10 minutes), and an inferred block RAM's clock-to-out bound DS-CNN and the FC autoencoder on the
        # ULX3S-85F. A shallower one stays one LUT4 per bit, and so does every one on the iCE40, whose UP5K cannot
        # spare a register per bit of the word.
        if family != "ice40" and len(hw.param_words) > LUT_ROM_DEPTH:
            m.submodules.params = params = BankedMemory(unsigned(hw.param_width), len(hw.param_words),
                                                        init=hw.param_words, writable=False, latency=hw.read_latency)
            p_rd = _ReadPort(params.rd_addr, params.rd_en, params.rd_data, params.latency)
        else:
            m.submodules.params = params = Memory(shape=unsigned(hw.param_width), depth=len(hw.param_words),
                                                  init=list(hw.param_words))
            port = params.read_port()
            p_rd = _ReadPort(port.addr, port.en, port.data, 1)
        lut_rd = None
        if hw.lut_words:
            m.submodules.tables = tables = Memory(shape=wd.store, depth=len(hw.lut_words), init=list(hw.lut_words))
            lut_rd = tables.read_port()
        arena = []
        for r in range(hw.replicas):
            replica = InterleavedMemory(wd.store, hw.arena_depth, lanes=hw.write_lanes, latency=hw.read_latency,
                                        single_port=hw.arena_spram)
            m.submodules[f"arena{r}"] = replica
            arena.append(replica)
        return _Memories(program.read_port(), weights, p_rd, lut_rd, arena)

    def _sequencer(self, m: Module, mem: _Memories) -> _Sequencer:
        """Fetch a descriptor, start its unit, wait for n_out completions (and no trailing MAC results)."""
        hw = self.hw
        m.submodules.mac_writer = macw = (QuadMacWriter if hw.write_lanes == 4 and hw.rows >= 2 else MacWriter)(hw)
        roww = None
        if hw.unrolls:
            m.submodules.row_writer = roww = RowWriter(hw)
        d = Signal(descriptor_layout(hw))
        e = Signal(ends_layout(hw))
        pc = Signal(range(len(hw.program)))
        start = Signal(len(KINDS))
        n_max = max(op.n_out for op in hw.program)
        done = Signal(range(n_max + 1))
        # n_out - 1 and n_out - 2 (to - 4 on a four-lane arena), set with `d`, so `finished` (done + completion ==
        # n_out) is compares from registers that the completion count selects, with no adder behind the write's
        # enables (the OrangeCrab's critical path, 5.2 ns: the landing write's enables through that adder and compare)
        most = max(hw.write_lanes, 2)  # completions in one cycle
        n_out_less = [Signal(range(-most, n_max + 1), name=f"n_out_less{k}") for k in range(1, most + 1)]
        completion = Signal(range(most + 1))
        m.d.comb += mem.prog_rd.addr.eq(pc)
        start_next = Signal.like(start)
        m.d.sync += start.eq(start_next)  # a pulse: set in LOAD, so it is high in START only
        # done == d.n_out and pc == the last entry, as registers worked out with the counts they compare, so the
        # step to the next entry is a gate from flip-flops (the OrangeCrab's critical path, 5.1 ns)
        finished, pc_last = Signal(), Signal(init=len(hw.program) == 1)
        # the running kind, one-hot, and whether the walker runs (mac or max), as registers set with `d`: the
        # decode of d.kind had sat in front of the beats' ready and the walker's FIFO read (the OrangeCrab's
        # critical path, 5.6 ns) and of every replica's read address multiplexer
        kind_is, walking = Signal(len(KINDS)), Signal()
        # the running entry is an unrolled layer (its results go to the row writer), and that decision for the entry
        # being loaded, as `start_next`
        unrolled, unrolled_next = Signal(), Signal()
        with m.FSM():
            with m.State("FETCH"):
                m.next = "LOAD"
            with m.State("LOAD"):
                word = descriptor_layout(hw)(mem.prog_rd.data)
                m.d.sync += [d.eq(mem.prog_rd.data), done.eq(0), finished.eq(word.n_out == 0),
                             *(less.eq(word.n_out - k) for k, less in enumerate(n_out_less, 1))]
                m.d.sync += [e[name].eq(word[name] - 1) for name, _ in ends_layout(hw)]
                m.d.comb += start_next.eq(1 << word.kind.as_unsigned())
                m.d.sync += [kind_is.eq(start_next), walking.eq((word.kind == MAC) | (word.kind == MAX))]
                if roww is not None:
                    m.d.comb += unrolled_next.eq(word.unroll > 1)
                    m.d.sync += unrolled.eq(unrolled_next)
                m.next = "START"
            with m.State("START"):  # `start` holds the kind decoded in LOAD for this one cycle
                m.next = "RUN"
            with m.State("RUN"):
                if most == 2:  # the two-lane form as it was (its Fmax is what the synthesis tests' floors measure)
                    now_finished = Mux(completion[1], done == n_out_less[1],
                                       Mux(completion[0], done == n_out_less[0], done == d.n_out))
                else:
                    now_finished = Array([done == d.n_out] + [done == less for less in n_out_less])[completion]
                m.d.sync += [done.eq(done + completion), finished.eq(now_finished)]
                writers_idle = ~macw.busy if roww is None else ~(macw.busy | roww.busy)
                with m.If(finished & writers_idle):
                    m.d.sync += [pc.eq(Mux(pc_last, 0, pc + 1)),
                                 pc_last.eq(Mux(pc_last, len(hw.program) == 1, pc + 1 == len(hw.program) - 1))]
                    m.next = "FETCH"
        return _Sequencer(d, e, start, start_next, completion, macw, roww, kind_is, walking, unrolled, unrolled_next)

    def _units(self, m: Module, seq: _Sequencer, mem: _Memories) -> _Units:
        """One unit per layer kind; each sees the descriptor and starts when the sequencer starts its kind."""
        hw = self.hw
        m.submodules.walker = walker = WindowWalker(hw)
        m.submodules.params_reader = preader = ParamReader(hw, mem.p_rd.latency)
        a_shape = (signed if hw.a_signed else unsigned)(hw.a_bits)
        m.submodules.engine = engine = TileEngine(hw.rows, hw.cols, signed(hw.w_bits), a_shape, hw.acc_bits,
                                                  hw.store_bits - 1, hw.max_right, hw.max_left,
                                                  activation_support(hw), hw.product_stages, lut_pes=hw.lut_pes)
        m.submodules.max_unit = maxu = MaxUnit(hw)
        m.submodules.eltwise = ew = EltwiseUnit(hw)
        units = [(walker, (MAC, MAX), None), (preader, (MAC,), None), (seq.macw, (MAC,), 0), (maxu, (MAX,), None),
                 (ew, (ELTWISE, OUTPUT), None)]
        if seq.roww is not None:
            units.append((seq.roww, (MAC,), 1))
        for unit, kinds, unrolled in units:
            # each unit's start a register of its own: the OR of its kinds lies before it, not in front of the
            # priority of every counter of the unit (the OrangeCrab's critical path, through the walker's, 5.7 ns);
            # a MAC writer only for its own entries where the plan has both (`unrolled`: which)
            unit_start = Signal(name=f"start_{type(unit).__name__}")
            starts = Cat(*(seq.start_next[x] for x in kinds)).any()
            if unrolled is not None and seq.roww is not None:
                starts = starts & (seq.unrolled_next == unrolled)
            m.d.sync += unit_start.eq(starts)
            m.d.comb += [unit.d.eq(seq.d), unit.e.eq(seq.e), unit.start.eq(unit_start)]
        return _Units(walker, preader, engine, maxu, ew)

    def _walker_paths(self, m: Module, seq: _Sequencer, mem: _Memories, u: _Units) -> None:
        """Weights and parameters into the walker and reader; beats to the engine (mac) or the max unit (max)."""
        d, walker, engine, preader, maxu = seq.d, u.walker, u.engine, u.preader, u.maxu
        is_mac = seq.kind_is[MAC]
        beats = walker.beats  # from the walker's own FIFO: the engine's stall (drain, cooldown) stops there
        m.d.comb += [
            mem.weights.rd_addr.eq(walker.w_addr), mem.weights.rd_en.eq(walker.rd_en),
            walker.w_data.eq(mem.weights.rd_data),
            mem.p_rd.addr.eq(preader.addr), mem.p_rd.en.eq(preader.rd_en), preader.rd_data.eq(mem.p_rd.data),
            engine.params.valid.eq(preader.params.valid), engine.params.payload.eq(preader.params.payload),
            preader.params.ready.eq(engine.params.ready), preader.ready_next.eq(engine.params_ready_next),
            engine.operands.valid.eq(beats.valid & is_mac),
            engine.operands.payload.w.eq(beats.payload.w),
            engine.operands.payload.last.eq(beats.payload.last),
            maxu.beats.valid.eq(beats.valid & ~is_mac),
            maxu.beats.payload.eq(beats.payload),
            beats.ready.eq(Mux(is_mac, engine.operands.ready, maxu.beats.ready)),
            engine.neg_shift.eq(d.neg_shift), engine.clamp_lo.eq(d.clamp_lo), engine.clamp_hi.eq(d.clamp_hi),
            engine.lo.eq(d.lo), engine.hi.eq(d.hi),
        ]
        # through the engine's own results FIFO: the writer's ready (its counters and compares) does not reach
        # the engine's drain and the parameter reader in the same cycle
        if seq.roww is None:
            wiring.connect(m, engine.results, seq.macw.results)
        else:  # the running entry's writer takes the results
            for writer, mine in ((seq.macw, ~seq.unrolled), (seq.roww, seq.unrolled)):
                m.d.comb += [writer.results.valid.eq(engine.results.valid & mine),
                             writer.results.payload.eq(engine.results.payload)]
            m.d.comb += engine.results.ready.eq(Mux(seq.unrolled, seq.roww.results.ready, seq.macw.results.ready))
        for i in range(self.hw.rows):
            m.d.comb += engine.operands.payload.a[i].eq(beats.payload.a[i])

    def _arena_reads(self, m: Module, seq: _Sequencer, mem: _Memories, u: _Units) -> None:
        """The walker owns every replica's read port (one per array row); the eltwise unit replicas 0 and (where
        the plan has an Add) 1, each read as a pair (the address and the one after it)."""
        walker, ew, walking = u.walker, u.ew, seq.walking
        for r, replica in enumerate(mem.arena):
            ew_read = ew.operand_read(replica, second=r != 0)
            if r < self.hw.rows:
                m.d.comb += walker.a_data[r].eq(replica.rd_data)
                walk_read = replica.single_read(walker.a_addr[r])
                m.d.comb += [replica.rd[f].eq(Mux(walking, walk_read[f], ew_read[f])) for f in ew_read]
            else:
                m.d.comb += [replica.rd[f].eq(ew_read[f]) for f in ew_read]
            # the unit that is not running holds its enable at 1 (its stages are empty), so the AND of both is the
            # running unit's: no descriptor decode in front of every block RAM's enable (DS-CNN's critical path on
            # the ULX3S-85F, 10.8 ns, with the kind decode and the multiplexer). Each replica has its own register
            # of that AND, worked out a cycle ahead like the units' own: one net had reached every replica's
            # blocks (ResNet-8's on the ULX3S-85F, 104 block RAMs, 10.0 ns)
            m.d.comb += replica.rd_en.eq(kept_copy(m, f"arena{r}_rd_en", walker.rd_en_next & ew.rd_en_next, 1))
        if len(mem.arena) > 1:
            m.d.comb += [ew.a_data.eq(mem.arena[0].rd_data), ew.b_data.eq(mem.arena[1].rd_data),
                         ew.a_next.eq(mem.arena[0].rd_next), ew.b_next.eq(mem.arena[1].rd_next)]
        else:  # no entry reads a second tensor (HardwarePlan.replicas): b stays 0
            m.d.comb += [ew.a_data.eq(mem.arena[0].rd_data), ew.a_next.eq(mem.arena[0].rd_next)]
        for k in range(ew.lanes - 2):
            m.d.comb += ew.a_more[k].eq(mem.arena[0].rd_more[k])
            if len(mem.arena) > 1:
                m.d.comb += ew.b_more[k].eq(mem.arena[1].rd_more[k])
        if mem.lut_rd is not None:
            m.d.comb += [mem.lut_rd.addr.eq(ew.lut_addr), mem.lut_rd.en.eq(ew.rd_en), ew.lut_data.eq(mem.lut_rd.data)]

    def _input_loader(self, m: Module, seq: _Sequencer, mem: _Memories) -> Signal:
        """The `input` entry: one write per input stream beat (once the weights are in, where they are loaded)."""
        hw, d, e = self.hw, seq.d, seq.e
        in_idx = Signal(range(hw.input.size + 1))
        loading = Signal()
        with m.If(seq.start[INPUT]):
            m.d.sync += [loading.eq(1), in_idx.eq(0)]
        accept = loading  # takes an input value this cycle, if one is offered
        if hw.weights_spram:
            accept = loading & self._weight_loader(m, mem.weights, loading & (in_idx == 0))
        m.d.comb += self.inputs.ready.eq(accept)
        # registered, like the units' writes: the host's `valid` and the address adder end here, not in the arena's
        # write-port selection and pair addressing
        in_write = Signal(write_layout(hw))
        m.d.sync += in_write.eq(0)  # all zero while not writing, like the units' writes
        with m.If(self.inputs.valid & accept):
            m.d.sync += [in_write.en.eq(1), in_write.addr.eq(d.out_base + in_idx), in_write.data.eq(self.inputs.payload),
                         in_write.saturated.eq(0),  # inputs are already in format
                         in_write.next.eq(0), in_idx.eq(in_idx + 1)]
            with m.If(in_idx == e.n_out):
                m.d.sync += loading.eq(0)
        return in_write

    def _weight_loader(self, m: Module, weights: BankedMemory, idle) -> Signal:
        """The `load` stream's bytes into the weight memory (SPRAM, which has no bitstream contents): words of
        weight_bytes_per_word bytes, little-endian, from address 0 on, taken only while the accelerator waits
        for an inference's first input (`idle`), so no layer reads the memory while it changes. Returns `loaded`:
        the last word is in (inputs wait for it); a further whole image loads again."""
        hw = self.hw
        per_word, last = hw.weight_bytes_per_word, len(hw.weight_words) - 1
        byte_idx, addr = Signal(range(per_word)), Signal(range(last + 1))
        word, write, loaded = Signal(8 * per_word), Signal(), Signal()
        m.d.comb += self.load.ready.eq(idle)
        m.d.sync += write.eq(0)
        with m.If(self.load.valid & idle):
            # each byte enters at the top: after a word's last byte its first is the lowest
            m.d.sync += [word.eq(Cat(word[8:], self.load.payload)),
                         byte_idx.eq(Mux(byte_idx == per_word - 1, 0, byte_idx + 1)),
                         write.eq(byte_idx == per_word - 1)]
        with m.If(write):
            m.d.sync += addr.eq(Mux(addr == last, 0, addr + 1))
            with m.If(addr == last):
                m.d.sync += loaded.eq(1)
        m.d.comb += [weights.wr_addr.eq(addr), weights.wr_data.eq(word[:hw.weight_word_width]),
                     weights.wr_en.eq(write)]
        return loaded

    def _writes(self, m: Module, seq: _Sequencer, mem: _Memories, u: _Units, in_write: Signal,
                platform) -> None:
        """One write port for all replicas, driven by the running layer's unit; completions and the trace."""
        d = seq.d
        # every unit's write is all zero while it does not write, and one layer's unit runs at a time (the next
        # starts after the last write has landed), so the write port is their OR: one LUT level from the units'
        # registers, where a multiplexer selected by the descriptor's kind had taken three ahead of the pair
        # address adder (the OrangeCrab-25F's critical path, 5.1 ns). The iCE40 keeps the multiplexer: there
        # the OR cost 220 logic cells of the small test design's 2411 (its UP5K is full)
        write = Signal(write_layout(self.hw))
        if unless_ice40(None, platform):
            m.d.comb += write.eq(in_write.as_value() | seq.macw.write.as_value() | u.maxu.write.as_value()
                                 | u.ew.write.as_value()
                                 | (seq.roww.write.as_value() if seq.roww is not None else 0))
        else:
            with m.Switch(d.kind):
                for kind, unit_write in ((INPUT, in_write), (MAC, seq.macw.write), (MAX, u.maxu.write),
                                         (ELTWISE, u.ew.write)):
                    with m.Case(kind):
                        if kind == MAC and seq.roww is not None:  # each writer's write is zero while it idles
                            unit_write = seq.macw.write.as_value() | seq.roww.write.as_value()
                        m.d.comb += write.eq(unit_write)
        # one register stage before the arena: the units' address adders, requantizers and muxes (and the routing of
        # a write's lanes to the arena's parts) end here, not in every replica's write port; the sequencer counts a
        # write when it lands, so the next layer reads it
        landing = Signal(write_layout(self.hw))
        parts, routed = (Signal(mem.arena[0].wr.shape(), name=name) for name in ("parts", "routed"))
        index = Signal.like(self.trace_out.index)
        m.d.comb += mem.arena[0].lane_write(routed, write.addr,
                                            [(lane["data"], lane["en"]) for lane in write_lanes_of(write)])
        m.d.sync += [landing.eq(write), parts.eq(routed), index.eq(write.addr - d.out_base)]
        for replica in mem.arena:
            m.d.comb += replica.wr.eq(parts)
        wiring.connect(m, u.ew.outputs, wiring.flipped(self.outputs))  # from the unit's own FIFO
        m.d.comb += [
            seq.completion.eq(sum(lane["en"] for lane in write_lanes_of(landing))
                              + (self.outputs.valid & self.outputs.ready)),
            self.trace_out.valid.eq(landing.en), self.trace_out.layer.eq(d.trace_id),
            self.trace_out.index.eq(index),
            self.trace_out.data.eq(landing.data), self.trace_out.saturated.eq(landing.saturated),
            self.trace_out.next.eq(landing.next),
        ]
        if "more" in landing.shape().members:
            m.d.comb += self.trace_out.more.eq(landing.more)
