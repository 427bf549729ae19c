"""Each accelerator unit on Amaranth's own simulator against its Python model: no Verilator, seconds per test.

The models are the ones the rest of hwgen uses: the hardware plan's loop nest
(hwgen.hwplan.loopnest) for walker and writer addresses, the numerics'
requantize for the requantizer and the element-wise unit. A small network with
a strided padded conv, a depthwise conv on a residual Add (spread over the columns on
most arrays: the row writer), a padded max pool,
an average pool and a Linear layer is planned on several array shapes and weight widths (4-bit
layers packed two per 8-bit weight lane), and every `mac`/`max` program entry
is walked.
"""
from __future__ import annotations

import collections
import dataclasses

import itertools
import random

import numpy as np
import pytest
import torch
from amaranth import Module, Mux, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from torch import nn

from hwgen import api
from hwgen.fixed import Fixed, requantize
from hwgen.hwplan.lowering import requant_fields
from hwgen.hwplan import ELTWISE, MAC, MAX, ArrayShape, HardwarePlan, LayerOp, make_hardware_plan
from hwgen.hwplan.loopnest import k_steps, output_address, tiles, unrolled_output_address, window_address
from hwgen.hwplan.packing import column_tile_weights, weight_matrix
from hwgen.ops.lookup import index_shift
from hwgen.quant.config import LayerBits
from rtl_templates.accelerator import (EltwiseUnit, MacWriter, MaxUnit, QuadMacWriter, RowWriter, WindowWalker,
                                      write_lanes_of)
from rtl_templates.memories import READ_LATENCY, BankedMemory, InterleavedMemory
from rtl_templates.requant import PIPELINED_LATENCY, Requantizer
from rtl_templates.streams import StreamFIFO


class UnitNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 5, 3, stride=2, padding=1)
        self.dw = nn.Conv2d(5, 5, 3, padding=1, groups=5)
        self.pool = nn.MaxPool2d(2, stride=2, padding=1)
        self.avg = nn.AvgPool2d(2)
        self.fc = nn.Linear(5, 3)

    def forward(self, x):
        x = torch.relu(self.conv(x))
        x = self.pool(torch.relu(x + self.dw(x)))
        return self.fc(torch.flatten(self.avg(x), 1))


@pytest.fixture(scope="module")
def unit_model(tmp_path_factory):
    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("units") / "unit.pt2"
    torch.export.save(torch.export.export(UnitNet().eval(), (torch.zeros(1, 2, 7, 7),)), str(path))
    with pytest.warns(Warning):  # synthetic calibration data: the input is not digits-shaped
        prep = api.prepare(path)
    return prep


def _plan(prep, array: str, narrow: bool, write_lanes: int = 2) -> tuple:
    overrides = None
    if narrow:  # the first conv at 4 bits: two weights per 8-bit lane
        overrides = {prep.model.graph.nodes[1].name: LayerBits(4, None)}
    qm = api.quantize(prep, bits=8, overrides=overrides)
    return qm, make_hardware_plan(qm, ArrayShape.parse(array), write_lanes)


def _set_descriptor(ctx, unit, op: LayerOp) -> None:
    """The descriptor and its loop ends minus 1, as the sequencer gives them to every unit."""
    for name in unit.d.shape().members:
        ctx.set(getattr(unit.d, name), getattr(op, name))
    for name in unit.e.shape().members:
        ctx.set(getattr(unit.e, name), getattr(op, name) - 1)


def _arena_value(addr: int, hw: HardwarePlan) -> int:
    """A known, address-dependent activation: distinct neighbours, both signs, inside the store width."""
    lim = (1 << (hw.store_bits - 1)) - 1
    return (addr * 37 + 11) % (2 * lim + 1) - lim


def _run(dut, testbench, *, deadline_cycles: int) -> None:
    """Clocked simulation, stopped at the deadline; a hung unit then fails the test's count checks."""
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(testbench)
    sim.run_until(deadline_cycles * 1e-6)


# --- window walker --------------------------------------------------------------------------------

def _expected_beats(op: LayerOp, hw: HardwarePlan, wmat: np.ndarray | None) -> list[tuple]:
    out = []
    for tile in tiles(op, hw.rows, hw.cols):
        for step in k_steps(op):
            acts = []
            for i in range(hw.rows):
                addr = window_address(op, tile.row.first_pixel + i, tile.column.group, step)
                acts.append(op.pad_value if addr is None else _arena_value(addr, hw))
            weights = None
            if wmat is not None:
                weights = tuple(int(w) for w in column_tile_weights(op, wmat, tile.column)[:, step.k])
            out.append((tuple(acts), weights, int(step.k == op.k - 1)))
    return out


class _ReadPipe:
    """A read port as BankedMemory has it: the address registered, then latency - 1 stages, all moving on
    an enabled cycle only."""

    def __init__(self, latency: int = READ_LATENCY):
        self.address = None
        self.stages: list = [None] * (latency - 1)

    def tick(self, enabled: bool, read):
        """The clock edge: `read` is what the address presented this cycle reads: a value, or (a memory being
        written) a function called when the block reads it, at the next enabled edge, before that edge's write
        lands; returns the port's output."""
        if enabled:
            value = self.address() if callable(self.address) else self.address
            self.stages = [value] + self.stages[:-1]
            self.address = read
        return self.stages[-1]


def _walk(hw: HardwarePlan, op: LayerOp, seed: int, consumer_free: bool = True) -> list[tuple]:
    dut = WindowWalker(hw, consumer_free=consumer_free)
    rng = random.Random(seed)
    beats: list[tuple] = []
    expected_count = op.mtiles * op.groups * op.nt * op.k
    memories = _ReadPipe(hw.read_latency)

    async def testbench(ctx):
        _set_descriptor(ctx, dut, op)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        while len(beats) < expected_count:
            ready = rng.random() < 0.7  # backpressure: the beat must hold while not taken
            ctx.set(dut.beats.ready, ready)
            if ctx.get(dut.beats.valid) and ready:
                p = dut.beats.payload
                beats.append((tuple(ctx.get(p.a[i]) for i in range(hw.rows)),
                              tuple(ctx.get(p.w[j]) for j in range(hw.cols)), ctx.get(p.last)))
            rd = ctx.get(dut.rd_en)
            a_addr = [ctx.get(dut.a_addr[i]) for i in range(hw.rows)]
            w_addr = ctx.get(dut.w_addr)
            await ctx.tick()
            out = memories.tick(rd, ([_arena_value(a, hw) for a in a_addr], hw.weight_words[w_addr]))
            if out is not None:
                acts, word = out
                for i in range(hw.rows):
                    ctx.set(dut.a_data[i], acts[i])
                ctx.set(dut.w_data, word)
        for _ in range(3):
            ctx.set(dut.beats.ready, 1)
            assert not ctx.get(dut.beats.valid), "the walker produced more beats than the loop nest has"
            await ctx.tick()
        assert not ctx.get(dut.busy)

    _run(dut, testbench, deadline_cycles=4 * expected_count + 200)
    assert len(beats) == expected_count
    return beats


@pytest.mark.parametrize("array,narrow,read_latency,consumer_free", [
    ("1x1", False, 3, True), ("2x3", True, 4, True), ("3x2", False, 3, False), ("4x4", True, 4, True),
    ("2x4", False, 3, False), ("3x3", False, 5, True)])
def test_walker_beats_follow_the_loop_nest(unit_model, array, narrow, read_latency, consumer_free):
    """Every beat against the loop nest, under random readiness; both stall forms (`consumer_free`: the
    FIFO's room counted without the beat taken this cycle; without it, the iCE40's two-entry form)."""
    qm, hw = _plan(unit_model, array, narrow)
    hw = dataclasses.replace(hw, read_latency=read_latency)  # ECP5's registered bank-multiplexer level: 4
    walked = [op for op in hw.program if op.kind in (MAC, MAX)]
    assert {op.kind for op in walked} == {MAC, MAX}
    if narrow:
        assert 4 in hw.weight_widths and any(op.w_per_word == 2 for op in walked)
    for n, op in enumerate(walked):
        node = qm.graph.nodes[op.trace_id]
        wmat = weight_matrix(qm, node)[0] if op.kind == MAC else None
        got = _walk(hw, op, seed=n, consumer_free=consumer_free)
        want = _expected_beats(op, hw, wmat)
        for b, (g, w) in enumerate(zip(got, want)):
            assert g[0] == w[0], f"{node.name} beat {b}: activations {g[0]} != {w[0]}"
            if w[1] is not None:
                assert g[1][:len(w[1])] == w[1], f"{node.name} beat {b}: weights {g[1]} != {w[1]}"
            assert g[2] == w[2], f"{node.name} beat {b}: last"


# --- MAC writer --------------------------------------------------------------------------------------

@pytest.mark.parametrize("array,lanes,registered", [("1x1", 2, True), ("2x3", 2, True), ("3x2", 2, True),
                                                    ("3x2", 1, True), ("2x3", 2, False), ("3x2", 1, False),
                                                    ("4x3", 4, True), ("3x2", 4, False), ("6x2", 4, True),
                                                    ("2x3", 4, True)])
def test_mac_writer_addresses_follow_the_loop_nest(unit_model, array, lanes, registered):
    """Result beats (one output pixel's columns each) become a write per valid (pixel, channel), two neighbouring
    pixels per cycle on a two-lane arena and up to four on a four-lane one (QuadMacWriter: groups of four rows,
    shorter at a tile's or the layer's end); with each beat registered first (ECP5) or taken straight from the
    engine's FIFO (the iCE40)."""
    qm, hw = _plan(unit_model, array, narrow=False, write_lanes=lanes)
    for op in (op for op in hw.program if op.kind == MAC and not op.unrolled):  # those: the row writer's
        want = [(output_address(op, t.row.first_pixel + i, t.column.first_channel + j), (t.row.index * 7 + i * 3 + j) % 50)
                for t in tiles(op, hw.rows, hw.cols) for i in range(t.row.rows) for j in range(t.column.cols)]
        if lanes == 4:  # a cycle per column for each group of up to four valid rows
            cycles = sum(-(-t.row.rows // 4) * t.column.cols for t in tiles(op, hw.rows, hw.cols))
            _check_writer(QuadMacWriter(hw, registered_beats=registered), op, hw, want, cycles)
            continue
        pixel_pairs = sum(t.row.rows // 2 * t.column.cols for t in tiles(op, hw.rows, hw.cols)) if lanes == 2 else 0
        _check_writer(MacWriter(hw, registered_beats=registered), op, hw, want, len(want) - pixel_pairs)


@pytest.mark.parametrize("array,lanes,registered,unroll", [
    ("2x3", 2, True, None), ("3x2", 1, True, None), ("1x4", 2, False, None), ("4x4", 2, True, None),
    ("3x4", 1, False, None), ("3x4", 2, True, 3), ("2x3", 1, False, 3), ("3x4", 4, True, None),
    ("4x4", 4, False, 3), ("2x3", 4, True, 3)])
def test_row_writer_addresses_follow_the_row_segments(unit_model, monkeypatch, array, lanes, registered, unroll):
    """An unrolled depthwise layer's result beats (one row segment's neighbouring pixels of one channel each)
    become writes along the segments, a row tile's segments of one channel one run of addresses written two
    pixels per cycle on a two-lane arena (four on a four-lane one); a row tile's segments again for each channel.
    An unroll of 3 on the 4-pixel rows leaves a one-pixel last segment (LayerOp.tail)."""
    if unroll:
        from hwgen.hwplan import lowering
        monkeypatch.setattr(lowering, "unroll_for",
                            lambda graph, node, *_: unroll if getattr(node, "groups", 1) > 1 else 1)
    qm, hw = _plan(unit_model, array, narrow=False, write_lanes=lanes)
    assert unroll is None or any(op.tail < op.unroll for op in hw.program)
    ops = [op for op in hw.program if op.unrolled]
    assert ops, "the depthwise conv spreads over the columns on this array"
    for op in ops:
        want, cycles = [], 0
        for t in tiles(op, hw.rows, hw.cols):
            run = []
            for i in range(t.row.rows):
                addrs = [unrolled_output_address(op, t.row.first_pixel + i, t.column.group, j) for j in range(hw.cols)]
                run += [(a, (t.row.index * 7 + i * 3 + j) % 50) for j, a in enumerate(addrs) if a is not None]
            assert [a for a, _ in run] == list(range(run[0][0], run[0][0] + len(run)))  # one run of addresses
            want += run
            cycles += -(-len(run) // lanes)  # written `lanes` at a time, pairs spanning segments
        assert len({a for a, _ in want}) == len(want) == op.ohw * op.groups  # every output once
        _check_writer(RowWriter(hw, registered_beats=registered), op, hw, want, cycles)


def _check_writer(dut, op: LayerOp, hw: HardwarePlan, want: list[tuple[int, int]], want_cycles: int) -> None:
    """Feed a writer the beats (value (row tile * 7 + row * 3 + column) % 50, random idle cycles between them)
    and compare its writes, and the cycles that write, with the expected (address, value) pairs."""
    beats = [[(t.row.index * 7 + i * 3 + j) % 50 for j in range(hw.cols)]
             for t in tiles(op, hw.rows, hw.cols) for i in range(hw.rows)]
    got = []
    write_cycles = 0
    rng = random.Random(op.trace_id)

    async def testbench(ctx):
        _set_descriptor(ctx, dut, op)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        async def tick():  # the writes are registered: record every cycle's, beat or not
            nonlocal write_cycles
            if ctx.get(dut.write.en):
                write_cycles += 1
                got.append((ctx.get(dut.write.addr), ctx.get(dut.write.data)))
                for k, lane in enumerate(write_lanes_of(dut.write)[1:], 1):  # further pixels, at addr + k
                    if ctx.get(lane["en"]):
                        got.append((ctx.get(dut.write.addr) + k, ctx.get(lane["data"])))
            await ctx.tick()

        for beat in beats:
            while rng.random() < 0.3:  # idle cycles between result beats
                ctx.set(dut.results.valid, 0)
                await tick()
            ctx.set(dut.results.valid, 1)
            for j, v in enumerate(beat):
                ctx.set(dut.results.payload.data[j], v)
            while True:
                taken = ctx.get(dut.results.ready)
                await tick()
                if taken:
                    break
        ctx.set(dut.results.valid, 0)
        for _ in range(hw.cols + 1):  # the last beat may wait in the writer's beat register, a column a cycle
            if not ctx.get(dut.busy):
                break
            await tick()
        assert not ctx.get(dut.busy)
        await tick()  # the last write leaves its register
        await tick()

    _run(dut, testbench, deadline_cycles=4 * len(beats) * hw.cols + 100)
    name = hw.layer_names[op.trace_id]
    assert sorted(got) == sorted(want), f"layer {name}"  # pairs go channel by channel: another order
    # two pixels a cycle (a MAC layer's row without a partner, a segment's odd last pixel: written alone)
    assert write_cycles == want_cycles, f"layer {name}"


# --- max unit ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("array,lanes", [("1x1", 2), ("3x2", 2), ("4x4", 2), ("3x2", 1)])
def test_max_unit_writes_each_windows_maximum(unit_model, array, lanes):
    qm, hw = _plan(unit_model, array, narrow=False, write_lanes=lanes)
    op = next(op for op in hw.program if op.kind == MAX)
    beats = _expected_beats(op, hw, None)
    want = []
    for n, t in enumerate(tiles(op, hw.rows, hw.cols)):
        window = [b[0] for b in beats[n * op.k:(n + 1) * op.k]]
        want += [(output_address(op, t.row.first_pixel + i, t.column.group), max(w[i] for w in window))
                 for i in range(t.row.rows)]
    dut = MaxUnit(hw)
    got = []
    rng = random.Random(1)

    async def testbench(ctx):
        _set_descriptor(ctx, dut, op)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        pending = list(beats)
        while pending or len(got) < len(want):
            offer = bool(pending) and rng.random() < 0.8
            ctx.set(dut.beats.valid, offer)
            if offer:
                for i, v in enumerate(pending[0][0]):
                    ctx.set(dut.beats.payload.a[i], v)
                ctx.set(dut.beats.payload.last, pending[0][2])
            if ctx.get(dut.write.en):
                got.append((ctx.get(dut.write.addr), ctx.get(dut.write.data)))
                if ctx.get(dut.write.next.en):  # two neighbouring pixels per cycle
                    got.append((ctx.get(dut.write.addr) + 1, ctx.get(dut.write.next.data)))
            taken = offer and ctx.get(dut.beats.ready)
            await ctx.tick()
            if taken:
                pending.pop(0)

    _run(dut, testbench, deadline_cycles=3 * len(beats) + 3 * len(want) + 100)
    assert got == want


# --- requantizer and element-wise unit ----------------------------------------------------------------

@pytest.mark.parametrize("pipelined", [False, True])
@pytest.mark.parametrize("acc_bits,out_bits,max_right,max_left", [(12, 7, 5, 2), (20, 3, 9, 0), (9, 8, 1, 3)])
def test_requantizer_matches_the_numerics(acc_bits, out_bits, max_right, max_left, pipelined):
    """y and the saturation flag equal hwgen.fixed.requantize for random inputs, every activation, both signs;
    pipelined, one value enters per cycle and leaves `latency` cycles later."""
    dut = Requantizer(acc_bits, out_bits, max_right, max_left, pipelined=pipelined)
    rng = np.random.default_rng(acc_bits)
    cases = []
    for _ in range(400):
        signed = bool(rng.integers(2))
        shift = int(rng.integers(-max_left, max_right + 1))
        act = ["none", "relu", "relu6", "clamp:-0.75:1.5", f"leaky:{max(1, max_right - shift)}"][rng.integers(5)]
        if act.startswith("leaky") and shift >= max_right:
            act = "none"  # the plan's max_right covers shift + K
        lim = 1 << (acc_bits - 2)
        acc, bias = int(rng.integers(-lim, lim)), int(rng.integers(-lim, lim))
        frac = int(rng.integers(0, 3))
        out = Fixed(out_bits, frac, signed)
        cases.append((acc, bias, shift, act, out))

    async def combinational(ctx):
        for acc, bias, shift, act, out in cases:
            ctx.set(dut.acc, acc)
            ctx.set(dut.bias, bias)
            ctx.set(dut.shift, shift)
            for name, v in requant_fields(out, act).items():
                ctx.set(getattr(dut, name), v)
            y, sat = requantize(np.array([acc + bias]), shift + out.frac, out, act)
            assert (ctx.get(dut.y), ctx.get(dut.saturated)) == (int(y[0]), int(sat > 0)), (acc, bias, shift, act, out)

    async def pipelined_stream(ctx):
        entered, seen = [], []  # per cycle: the expected result of the value entered, and the outputs after it
        ctx.set(dut.en, 1)
        by_activation = sorted(cases, key=lambda c: (c[3], repr(c[4])))
        for _, group in itertools.groupby(by_activation, key=lambda c: (c[3], repr(c[4]))):
            group = list(group)
            for name, v in requant_fields(group[0][4], group[0][3]).items():  # held while the group passes
                ctx.set(getattr(dut, name), v)
            for case in group + [None] * dut.latency:  # then drained before the next group
                if case is not None:
                    acc, bias, shift, act, out = case
                    ctx.set(dut.acc, acc)
                    ctx.set(dut.bias, bias)
                    ctx.set(dut.shift, shift)
                    y, sat = requantize(np.array([acc + bias]), shift + out.frac, out, act)
                    entered.append((int(y[0]), int(sat > 0)))
                else:
                    entered.append(None)
                await ctx.tick()
                seen.append((ctx.get(dut.y), ctx.get(dut.saturated)))
        assert dut.latency == PIPELINED_LATENCY
        for t, want in enumerate(entered):
            if want is not None:
                assert seen[t + dut.latency - 1] == want, t

    sim = Simulator(dut)
    if pipelined:
        sim.add_clock(1e-6)
    testbench = pipelined_stream if pipelined else combinational
    sim.add_testbench(testbench)
    sim.run()


def _in_format(qm, hw: HardwarePlan, op: LayerOp):
    """Arena values inside the format of the entry's input (what the layer before it wrote)."""
    fmt = hw.tensor(qm.graph.node(hw.layer_names[op.trace_id]).inputs[0]).fmt
    return lambda addr: int(np.clip(_arena_value(addr, hw), fmt.min, fmt.max))


def _eltwise_writes(hw: HardwarePlan, op: LayerOp, lut: list[int], value) -> tuple[int, list]:
    """Run one element-wise entry with arena values `value(addr)` (both read ports) and a table memory:
    (cycles that wrote, (address, value) writes)."""
    dut = EltwiseUnit(hw)
    writes = []
    write_cycles = 0
    arena = _ReadPipe(hw.read_latency)

    async def testbench(ctx):
        _set_descriptor(ctx, dut, op)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for _ in range(op.n_out + dut.latency + 2):
            nonlocal write_cycles
            if ctx.get(dut.write.en):
                write_cycles += 1
                writes.append((ctx.get(dut.write.addr), ctx.get(dut.write.data)))
                for k, lane in enumerate(write_lanes_of(dut.write)[1:], 1):  # further values, at addr + k
                    if ctx.get(lane.en):
                        writes.append((ctx.get(dut.write.addr) + k, ctx.get(lane.data)))
            rd, a, b, la = ctx.get(dut.rd_en), ctx.get(dut.a_addr), ctx.get(dut.b_addr), ctx.get(dut.lut_addr)
            await ctx.tick()
            ctx.set(dut.lut_data, lut[la % len(lut)])  # the table memory: one cycle of read latency
            out = arena.tick(rd, [(value(a + k), value(b + k)) for k in range(max(dut.lanes, 2))])  # as lanes
            if out is not None:
                ports = [(dut.a_data, dut.b_data), (dut.a_next, dut.b_next)]
                ports += [(dut.a_more[k], dut.b_more[k]) for k in range(dut.lanes - 2)]
                for (pa, pb), (va, vb) in zip(ports, out):
                    ctx.set(pa, va)
                    ctx.set(pb, vb)

    _run(dut, testbench, deadline_cycles=op.n_out + 60)
    return write_cycles, writes


@pytest.mark.parametrize("array,read_latency,lanes", [("1x1", 3, 2), ("2x3", 4, 2), ("2x2", 5, 2), ("2x3", 4, 4),
                                                      ("1x1", 3, 4)])
def test_eltwise_unit_adds_requantizes_and_writes(unit_model, array, read_latency, lanes):
    """The residual Add: (a << sa) + (b << sb) requantized, `lanes` elements per cycle (read and written)."""
    qm, hw = _plan(unit_model, array, narrow=False, write_lanes=lanes)
    hw = dataclasses.replace(hw, read_latency=read_latency)
    op = next(op for op in hw.program if op.kind == ELTWISE and op.has_b)
    out = qm.plan.layer(hw.layer_names[op.trace_id]).out
    assert op.pairs
    cycles, got = _eltwise_writes(hw, op, [0], lambda addr: _arena_value(addr, hw))
    activation = qm.graph.node(hw.layer_names[op.trace_id]).activation
    want = []
    for i in range(op.n_out):
        total = (_arena_value(op.in_base + i, hw) << op.sa) + (_arena_value(op.in2_base + i, hw) << op.sb)
        y, _ = requantize(np.array([total]), op.shift + out.frac, out, activation)
        want.append((op.out_base + i, int(y[0])))
    assert op.sa != op.sb or op.shift != 0, "the test plan should exercise the alignment shifts"
    assert got == want
    assert cycles == -(-op.n_out // lanes)


@pytest.fixture(scope="module")
def zoo_plan(tmp_path_factory):
    """The op zoo's plan: upsample, table and copying-concat entries for the element-wise unit."""
    from model_zoo import NewOpsNet

    torch.manual_seed(5)
    path = tmp_path_factory.mktemp("zoo") / "zoo.pt2"
    torch.export.save(torch.export.export(NewOpsNet().eval(), (torch.zeros(1, 1, 12, 12),)), str(path))
    with pytest.warns(Warning):
        qm = api.quantize(path, bits=8)
    return qm, make_hardware_plan(qm, ArrayShape(2, 3))


def test_eltwise_unit_upsamples_with_its_repeating_read_walk(zoo_plan):
    qm, hw = zoo_plan
    op = next(op for op in hw.program if op.kind == ELTWISE and op.up > 1)
    c, h, w = qm.graph.node(qm.graph.node(hw.layer_names[op.trace_id]).inputs[0]).shape
    src = np.arange(c * h * w).reshape(c, h, w)
    want = np.repeat(np.repeat(src, op.up, axis=1), op.up, axis=2).reshape(-1)
    value = _in_format(qm, hw, op)
    _, writes = _eltwise_writes(hw, op, list(hw.lut_words), value)
    assert writes == [(op.out_base + i, value(op.in_base + int(v))) for i, v in enumerate(want)]


def test_eltwise_unit_looks_up_tables_and_writes_copies_at_their_offset(zoo_plan):
    qm, hw = zoo_plan
    lut = list(hw.lut_words)
    op = next(op for op in hw.program if op.kind == ELTWISE and op.lut)
    value = _in_format(qm, hw, op)
    _, writes = _eltwise_writes(hw, op, lut, value)
    node = qm.graph.node(hw.layer_names[op.trace_id])
    fin = qm.in_format(node)
    k = index_shift(fin)
    want = [int(qm.tables[node.name][(value(op.in_base + i) >> k) - (fin.min >> k)]) for i in range(op.n_out)]
    assert writes == [(op.out_base + i, v) for i, v in enumerate(want)]
    copy = next(op for op in hw.program if op.kind == ELTWISE and op.out_off)
    _, writes = _eltwise_writes(hw, copy, lut, _in_format(qm, hw, copy))
    assert [a for a, _ in writes] == [copy.out_base + copy.out_off + i for i in range(copy.n_out)]


@pytest.mark.parametrize("depth", [2, 3, 4])
def test_stream_fifo_keeps_order_and_says_its_readiness_a_cycle_ahead(depth):
    """Random pushes and pops against a deque: first in, first out, at most `depth` held, valid as soon as a
    value is in; `ready_next` is i.ready after the edge, `ready_unless_taken` the room without this cycle's pop."""
    dut = StreamFIFO(unsigned(8), depth=depth)
    rng = random.Random(depth)
    held, sent, got = collections.deque(), 0, []

    async def testbench(ctx):
        nonlocal sent
        for _ in range(400):
            offer, take = rng.random() < 0.6, rng.random() < 0.5
            ctx.set(dut.i.valid, offer)
            ctx.set(dut.i.payload, sent % 256)
            ctx.set(dut.o.ready, take)
            assert ctx.get(dut.o.valid) == bool(held) and ctx.get(dut.i.ready) == (len(held) < depth)
            push, pop = offer and len(held) < depth, take and bool(held)
            if pop:
                assert ctx.get(dut.o.payload) == held[0]
            assert ctx.get(dut.ready_unless_taken) == (len(held) + push < depth)
            ready_next = ctx.get(dut.ready_next)
            await ctx.tick()
            if pop:
                got.append(held.popleft())
            if push:
                held.append(sent % 256)
                sent += 1
            assert ready_next == (len(held) < depth)

    _run(dut, testbench, deadline_cycles=500)
    assert len(got) > 100 and got == [v % 256 for v in range(len(got))]


@pytest.mark.parametrize("depth,bank_depth,latency", [(13, 4, 3), (8, 8, 3), (5, None, 3), (40, 2, 4), (8, 2, 4),
                                                       (5, None, 4), (40, 2, 5), (5, None, 5)])
def test_banked_memory_reads_what_was_written_read_latency_enabled_cycles_later(depth, bank_depth, latency):
    """Random reads, writes and enables against a list; the read pipeline holds while `rd_en` is low. Latency 4:
    the registered group level (20 banks: five groups); 5: a register beside each bank before it."""
    init = [(7 * i + 3) % 256 for i in range(depth)]
    dut = BankedMemory(unsigned(8), depth, init=init, bank_depth=bank_depth, latency=latency)
    rng = random.Random(depth)
    model, reads = list(init), _ReadPipe(latency)

    async def testbench(ctx):
        for _ in range(300):
            rd_en, rd_addr = rng.random() < 0.6, rng.randrange(depth)
            wr_en, wr_addr, wr_data = rng.random() < 0.4, rng.randrange(depth), rng.randrange(256)
            ctx.set(dut.rd_en, rd_en)
            ctx.set(dut.rd_addr, rd_addr)
            ctx.set(dut.wr_en, wr_en)
            ctx.set(dut.wr_addr, wr_addr)
            ctx.set(dut.wr_data, wr_data)
            await ctx.tick()
            want = reads.tick(rd_en, lambda a=rd_addr: model[a])  # read before that cycle's write lands
            if wr_en:
                model[wr_addr] = wr_data
            if want is not None:
                assert ctx.get(dut.rd_data) == want

    _run(dut, testbench, deadline_cycles=400)
    assert dut.banks() == -(-depth // (bank_depth or depth))


@pytest.mark.parametrize("depth,bank_depth,lanes,latency", [(13, 2, 2, 3), (8, 4, 2, 3), (5, None, 2, 3),
                                                             (13, 4, 1, 3), (27, 2, 2, 4), (27, 2, 2, 5),
                                                             (27, 2, 4, 4), (14, None, 4, 3), (9, 2, 4, 5)])
def test_interleaved_memory_writes_and_reads_pairs_at_any_parity(depth, bank_depth, lanes, latency):
    """Writes of up to `lanes` values (at addr, addr + 1, ...), reads of `lanes` values (`lanes_read`: a pair,
    or four) and single reads, random enables, against a list: what the arena's units rely on (one lane: single
    writes and reads only)."""
    dut = InterleavedMemory(unsigned(8), depth, lanes=lanes, bank_depth=bank_depth, latency=latency)
    rng = random.Random(depth * lanes)
    model, reads = [0] * depth, _ReadPipe(latency)

    class Wrapper(wiring.Component):  # the routing helpers are statements on the user's side: build them here
        def __init__(self):
            super().__init__({"addr": In(range(depth)), "pair": In(1), "rd_en": In(1),
                              "w_addr": In(range(depth)), "w": In(data.ArrayLayout(unsigned(8), lanes)),
                              "w_en": In(lanes), "data": Out(data.ArrayLayout(unsigned(8), max(lanes, 2)))})

        def elaborate(self, platform):
            m = Module()
            m.submodules.mem = dut
            afters = [self.addr + k for k in range(1, lanes)]
            read_all, read_one = dut.lanes_read(self.addr, afters or [None]), dut.single_read(self.addr)
            m.d.comb += [dut.rd[f].eq(Mux(self.pair, read_all[f], read_one[f])) for f in read_all]
            m.d.comb += dut.lane_write(dut.wr, self.w_addr, [(self.w[i], self.w_en[i]) for i in range(lanes)])
            m.d.comb += [dut.rd_en.eq(self.rd_en), self.data[0].eq(dut.rd_data), self.data[1].eq(dut.rd_next)]
            m.d.comb += [self.data[2 + k].eq(dut.rd_more[k]) for k in range(lanes - 2)]
            return m

    top = Wrapper()

    async def testbench(ctx):
        for _ in range(400):
            rd_en, pair = rng.random() < 0.6, lanes >= 2 and rng.random() < 0.5
            addr = rng.randrange(depth - lanes + 1 if pair else depth)
            w_addr = rng.randrange(depth)
            count = rng.randrange(min(lanes, depth - w_addr) + 1)  # values written: none up to `lanes`
            w = [rng.randrange(256) for _ in range(lanes)]
            for port, v in ((top.rd_en, rd_en), (top.pair, pair), (top.addr, addr), (top.w_addr, w_addr),
                            (top.w_en, (1 << count) - 1)):
                ctx.set(port, v)
            for i, v in enumerate(w):
                ctx.set(top.w[i], v)
            await ctx.tick()
            want = reads.tick(rd_en, lambda a=addr, p=pair: model[a:a + (lanes if p else 1)])
            for i in range(count):
                model[w_addr + i] = w[i]
            if want is not None:
                assert [ctx.get(top.data[k]) for k in range(len(want))] == want

    _run(top, testbench, deadline_cycles=500)


# --- per-family forms --------------------------------------------------------------------------------

@pytest.mark.parametrize("board_name", ["icebreaker", "ulx3s-85f", "orangecrab-25f"])
def test_board_platforms_select_their_familys_forms(board_name):
    """Amaranth spells the iCE40 family "iCE40"; the RTL's per-family forms must still see the board's family
    (hwgen.fit sizes the plan by it): a wide memory on the iCEBreaker takes SB_RAM40_4K-deep banks, not ECP5's."""
    from boards import board
    from rtl_templates.family import family_of
    from rtl_templates.memories import ICE40_BANK_DEPTH, block_depth

    brd = board(board_name)
    platform = brd.platform()
    assert family_of(platform) == brd.family and family_of(None) is None
    wide = BankedMemory(unsigned(40), 3000, writable=False)
    wide._MustUse__silence = True  # asked for its bank depth only, never elaborated
    assert wide._bank_depth(platform) == (ICE40_BANK_DEPTH if brd.family == "ice40" else block_depth("ecp5", 40, 3000))
    assert block_depth("ecp5", 40, 3000) != ICE40_BANK_DEPTH  # so the check tells the two apart
