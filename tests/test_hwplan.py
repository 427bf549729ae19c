"""Hardware plan and build directory: memory layout, packing, program, atomic writes, clear errors."""
from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

from hwgen import api, build as build_mod
from hwgen.build import Build, build
from hwgen.errors import HwgenError
from hwgen.hwplan import ArrayShape, HardwarePlan, estimate_cycles, make_hardware_plan
from hwgen.hwplan.allocation import first_fit, largest_first
from hwgen.quant import parse_override
from model_zoo import save_random_model

HWGEN = [sys.executable, "-m", "hwgen.cli"]


def decode_weights(hw: HardwarePlan, op) -> np.ndarray:
    """Read a mac layer's weights back out of the packed memory image: (groups * coutg, K)."""
    width = hw.weight_widths[op.w_code]
    out = np.zeros((op.groups * op.coutg, op.k), dtype=np.int64)
    for g in range(op.groups):
        for t in range(op.nt):
            base = op.w_base + (g * op.nt + t) * op.w_words
            for j in range(hw.cols):
                ch = t * hw.cols + j
                if ch >= op.coutg:
                    continue
                for kk in range(op.k):
                    word = hw.weight_words[base + kk // op.w_per_word]
                    v = (word >> (j * hw.w_bits + (kk % op.w_per_word) * width)) & ((1 << width) - 1)
                    out[g * op.coutg + ch, kk] = v - (1 << width) if v >> (width - 1) else v
    return out


@pytest.fixture(scope="module")
def mixed_cnn(cnn_path):
    return api.quantize(cnn_path, overrides=dict([parse_override("conv1=w3"), parse_override("conv2=w4")]))


def test_weights_packed_at_each_layers_width_and_decode_exactly(mixed_cnn):
    hw = make_hardware_plan(mixed_cnn, ArrayShape(3, 5))
    assert hw.weight_widths == (3, 4, 8) and hw.w_bits == 8
    macs = [op for op in hw.program if op.kind_name == "mac"]
    assert [op.w_per_word for op in macs] == [2, 2, 1]  # 3-bit: two per 8-bit lane; 4-bit: two; 8-bit: one
    for op in macs:
        name = hw.layer_names[op.trace_id]
        w = mixed_cnn.weights[name]
        np.testing.assert_array_equal(decode_weights(hw, op), w.reshape(w.shape[0], -1))
    # packing at the layer's width halves conv2's words against 8-bit storage
    conv2 = macs[1]
    assert conv2.w_words == -(-conv2.k // 2)


def test_arena_never_overlaps_live_tensors(tmp_path, cnn_path):
    plans = [api.quantize(cnn_path)]
    for seed in (9, 11, 12):
        _, shape = save_random_model(seed, tmp_path / f"m{seed}.pt2")
        with pytest.warns(api.CalibrationWarning):
            plans.append(api.quantize(tmp_path / f"m{seed}.pt2", input_shape=shape))
    for qm in plans:
        hw = make_hardware_plan(qm, ArrayShape(2, 2))
        slots = {t.name: t for t in hw.tensors}
        assert hw.input.name == qm.graph.input.name  # whichever placement won (the host link reads its format)
        for t in hw.tensors:
            assert 0 <= t.base and t.base + t.size <= hw.arena_depth
        for op in hw.program:
            if op.kind_name in ("mac", "max", "eltwise"):
                out = (op.out_base, op.out_base + op.n_out)
                node = qm.graph.node(hw.layer_names[op.trace_id])
                for src in node.inputs:
                    while src not in slots:
                        src = qm.graph.node(src).inputs[0]  # a Flatten aliases its input
                    s = slots[src]
                    assert s.base + s.size <= out[0] or out[1] <= s.base, (node.name, src)
        assert hw.arena_depth < sum(t.size for t in hw.tensors) or len(hw.tensors) <= 3  # memory is reused


def test_hardware_plan_round_trips_json(mixed_cnn, tmp_path):
    hw = make_hardware_plan(mixed_cnn, ArrayShape(4, 4))
    hw.save(tmp_path / "hw.json")
    assert HardwarePlan.load(tmp_path / "hw.json") == hw


def test_estimate_matches_ideal_for_a_long_k_layer(cnn_path):
    hw = make_hardware_plan(api.quantize(cnn_path), ArrayShape(4, 4))
    conv2 = next(c for c in estimate_cycles(hw) if c.layer == "conv2")
    assert conv2.ideal == 73728 / 16
    assert conv2.ideal <= conv2.estimate <= 1.1 * conv2.ideal


def test_array_shape_parse():
    assert ArrayShape.parse("4x8") == ArrayShape(4, 8)
    for bad in ("4", "0x4", "axb", "65x1"):
        with pytest.raises(HwgenError, match="array size"):
            ArrayShape.parse(bad)


def test_build_writes_every_artifact_and_verifies_them(tmp_path, mlp_path):
    b = build(mlp_path, tmp_path / "out", array=ArrayShape(2, 2), inputs=7)
    names = {p.name for p in b.path.iterdir()}
    assert {"build.json", "graph.json", "plan.json", "hwplan.json", "hwgen_accelerator.v", "vectors.npz",
            "report.json", "report.md"} <= names
    vec = np.load(b.path / "vectors.npz")
    assert vec["x_int"].shape == (7, 64) and vec["out_fc2"].shape == (7, 10) and vec["labels"].shape == (7,)
    report = json.loads((b.path / "report.json").read_text())
    assert report["macs"] == 64 * 32 + 32 * 10 and report["pes"] == 4
    assert [row["name"] for row in report["layers"]] == ["flatten", "fc1", "fc2"]
    (b.path / "plan.json").write_text((b.path / "plan.json").read_text() + " ")
    with pytest.raises(HwgenError, match="modified after the build"):
        Build.open(b.path)


def test_failed_build_leaves_nothing_behind(tmp_path, mlp_path, monkeypatch):
    def boom(*_a, **_k):
        raise RuntimeError("disk full")
    monkeypatch.setattr(build_mod, "format_build_report", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        build(mlp_path, tmp_path / "out", array=ArrayShape(2, 2), inputs=2)
    assert list(tmp_path.iterdir()) == []


def test_failed_rebuild_keeps_the_previous_build(tmp_path, mlp_path, monkeypatch):
    first = build(mlp_path, tmp_path / "out", array=ArrayShape(2, 2), inputs=2)
    monkeypatch.setattr(build_mod, "format_build_report", lambda *_a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        build(mlp_path, tmp_path / "out", array=ArrayShape(4, 4), inputs=2)
    assert Build.open(first.path).manifest["array"] == "2x2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_cli_errors_are_one_line(tmp_path, mlp_path):
    (tmp_path / "notabuild").mkdir()
    (tmp_path / "notabuild" / "x").write_text("mine")
    cases = [
        (["build", str(mlp_path), "-o", str(tmp_path / "notabuild")], "is not a hwgen build directory"),
        (["sim", str(tmp_path / "notabuild")], "not a hwgen build directory"),
        (["build", str(mlp_path), "--array", "0x3"], "array size"),
        (["build", str(mlp_path), "--bits", "1", "-o", str(tmp_path / "b")], "bits"),
    ]
    for args, message in cases:
        proc = subprocess.run([*HWGEN, *args], capture_output=True, text=True)
        assert proc.returncode != 0 and message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert not (tmp_path / "b").exists()
    assert (tmp_path / "notabuild" / "x").read_text() == "mine"


def test_help_on_build_and_sim():
    for cmd in ("build", "sim"):
        proc = subprocess.run([*HWGEN, cmd, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0 and "Usage" in proc.stdout


def test_array_auto_is_the_fastest_fitting_shape_not_the_largest(mlp_path, cnn_path):
    """digits_mlp computes one output pixel per layer (M = 1): extra array rows only idle, so the
    fastest array that fits the iCEBreaker is a single row (of 5 columns: fc1's 32 outputs take 7 column
    tiles of K = 64 steps, against 8 of 4 columns); digits_cnn fills all 8 DSPs."""
    from boards import board
    from hwgen.fit import candidate_shapes, choose_array, estimate, fits, plan_for, write_lanes

    ice = board("icebreaker")
    shape, est = choose_array(api.quantize(mlp_path), ice)
    assert shape == ArrayShape(1, 5) and est["dsps"] == 5
    cnn = api.quantize(cnn_path)
    shape, est = choose_array(cnn, ice)
    assert shape == ArrayShape(2, 4) and est["dsps"] == 8
    assert write_lanes(ice.family) == 1  # the UP5K is short of logic cells: a one-lane arena
    plans = {s: plan_for(cnn, s, ice.family) for s in candidate_shapes(ice.dsps)}
    assert all(hw.write_lanes == 1 and not hw.preload_origins for hw in plans.values())  # and no origin preload
    fitting = [s for s, hw in plans.items() if fits(estimate(hw, ice), ice)]
    cycles = {s: sum(c.estimate for c in estimate_cycles(plans[s])) for s in fitting}
    assert est["estimated_cycles"] == min(cycles.values()) == cycles[ArrayShape(2, 4)]
    assert {ArrayShape(2, 1), ArrayShape(1, 4), ArrayShape(2, 4)} <= set(cycles)  # non-square shapes were compared


def test_array_auto_keeps_to_routable_shapes_on_ecp5(cnn_path, monkeypatch):
    """The ECP5 placements that did not route (many DSPs and much block RAM) are refused, those that routed pass,
    and `--array auto` returns the fastest shape `routable` accepts."""
    from boards import board
    from hwgen import fit

    ulx, oc, ice = board("ulx3s-85f"), board("orangecrab-25f"), board("icebreaker")
    for dsps, brams in ((128, 153), (128, 189)):  # ResNet-8 4x32, DS-CNN 16x8
        assert not fit.routable({"dsps": dsps, "brams": brams}, ulx)
    for dsps, brams in ((128, 22), (64, 161), (64, 167), (32, 165)):
        assert fit.routable({"dsps": dsps, "brams": brams}, ulx)
    assert fit.routable({"dsps": 28, "brams": 19}, oc) and fit.routable({"dsps": 8, "brams": 30}, ice)
    cnn = api.quantize(cnn_path)
    free, _ = fit.choose_array(cnn, ulx)
    assert free.rows * free.cols > ulx.dsps // 2  # digits_cnn needs few block RAMs: the share of DSPs is free
    monkeypatch.setattr(fit, "ROUTABLE_BRAM_SHARE", 0.0)  # now every shape must keep to half the DSPs
    _, est = fit.choose_array(cnn, ulx)
    assert est["dsps"] <= ulx.dsps // 2
    plans = {s: fit.plan_for(cnn, s, "ecp5") for s in fit.candidate_shapes(ulx.dsps // 2)}
    cycles = [sum(c.estimate for c in estimate_cycles(hw)) for s, hw in plans.items()
              if fit.fits(fit.estimate(hw, ulx), ulx)]
    assert est["estimated_cycles"] == min(cycles)


def test_a_large_two_lane_arena_falls_back_to_one_lane(cnn_path, monkeypatch):
    """On ECP5 the arena takes two values per cycle while its interleaved halves stay within
    MAX_TWO_LANE_ARENA_BLOCKS block RAMs; past that the plan, its cycle model and its block count are one-lane."""
    from hwgen import fit

    cnn = api.quantize(cnn_path)
    shape = ArrayShape(8, 16)
    two = fit.plan_for(cnn, shape, "ecp5")
    assert two.write_lanes == 2 and fit.arena_blocks(two, "ecp5") <= fit.MAX_TWO_LANE_ARENA_BLOCKS
    monkeypatch.setattr(fit, "MAX_TWO_LANE_ARENA_BLOCKS", fit.arena_blocks(two, "ecp5") - 1)
    one = fit.plan_for(cnn, shape, "ecp5")
    assert one.write_lanes == 1 and one == make_hardware_plan(cnn, shape, write_lanes=1, product_stages=3,
                                                              read_latency=4)
    assert sum(c.estimate for c in estimate_cycles(one)) > sum(c.estimate for c in estimate_cycles(two))
    ice = fit.plan_for(cnn, shape, "ice40")
    assert (ice.write_lanes, ice.product_stages, ice.read_latency) == (1, 2, 3)  # the UP5K affords none of them
    # ECP5: a fabric register behind the DSP, a registered level in the bank multiplexers
    assert (two.product_stages, two.read_latency) == (3, 4)


@pytest.mark.filterwarnings("ignore::hwgen.api.CalibrationWarning")
def test_memory_misfit_names_the_tensor_the_layer_and_the_shortfall(root, tmp_path):
    """DS-CNN at 2x4 on the iCEBreaker: block RAM (and SPRAM) counted by kind against the board, refused before
    any file is written. Its two arena copies fill the four SPRAMs, so the weights stay in block RAM."""
    with pytest.raises(HwgenError) as err:
        build(root / "models" / "tiny" / "ds_cnn.pt2", tmp_path / "b", array=ArrayShape(2, 4), inputs=1,
              board="icebreaker")
    msg = str(err.value)
    assert "\n" not in msg and "ds_cnn.pt2 does not fit the block RAM of iCEBreaker" in msg
    assert "needs 84 of 30 blocks, 54 short" in msg and "activations in 4 SPRAMs" in msg
    assert "largest tensor 'features_0_0' 8000 values" in msg and "largest layer 'features_2_0' 1024 words" in msg
    assert "fewer bits" in msg and "smaller array" in msg
    assert not (tmp_path / "b").exists() and not list(tmp_path.glob(".b.partial*"))


def test_build_report_names_the_softmax_left_to_the_host(tmp_path):
    import torch
    from torch import nn

    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10), nn.Softmax(dim=1)).eval()
    torch.export.save(torch.export.export(model, (torch.zeros(1, 1, 8, 8),)), str(tmp_path / "m.pt2"))
    b = build(tmp_path / "m.pt2", tmp_path / "b", array=ArrayShape(2, 2), inputs=2)
    report = json.loads((b.path / "report.json").read_text())
    assert report["host_ops"] == ["softmax"]
    assert b.hw.output.size == 10  # the accelerator streams the 10 logits
    assert "left to the host: the model's trailing softmax" in (b.path / "report.md").read_text()


def test_wide_ecp5_memories_take_fewer_deeper_banks():
    """A word wider than a DP16KD may take banks deeper than one block, within 5% more blocks: the FC
    autoencoder's 128-bit weight ROM goes from 33 banks to 9; narrow memories (the arena) stay one block deep."""
    from hwgen.fit import BANK_SLACK, banked_blocks, bram_blocks, ecp5_bank_depth

    assert ecp5_bank_depth(128, 16576) == 2048 and banked_blocks(128, 16576, "ecp5") == 135
    assert bram_blocks(128, 16576, "ecp5") == 132 and 135 <= 132 * BANK_SLACK
    assert ecp5_bank_depth(128, 4860) == 1024 and banked_blocks(128, 4860, "ecp5") == 40  # 5 banks, not 10
    assert ecp5_bank_depth(128, 300) == 512  # one bank either way: the fewest blocks
    for depth in (1600, 26112, 52224):  # 9-bit arena halves and copies: one block deep
        assert ecp5_bank_depth(9, depth) == 2048 and banked_blocks(9, depth, "ecp5") == bram_blocks(9, depth, "ecp5")
    assert banked_blocks(128, 16576, "ice40") == bram_blocks(128, 16576, "ice40")


def _overlaps(placement, sizes, last_use) -> list[tuple[str, str]]:
    """Pairs of tensors live at one time whose address ranges meet."""
    bases = placement[0]
    return [(a, b) for (a, sa, fa), (b, sb, fb) in itertools.combinations(sizes, 2)
            if fa <= last_use[b] and fb <= last_use[a] and bases[a] < bases[b] + sb and bases[b] < bases[a] + sa]


def test_arena_placement_keeps_the_shallower_and_never_overlaps_live_tensors():
    """DS-CNN's chain: a 490-value input, then 8000-value layers each read by the next. First-fit puts the input
    below the first layer and the second layer above both; largest-first fits two 8000-word halves."""
    sizes = [("x", 490, 0)] + [(f"l{i}", 8000, i + 1) for i in range(9)]
    last_use = {"x": 1, **{f"l{i}": i + 2 for i in range(9)}}
    assert first_fit(sizes, last_use)[1] == 16490 and largest_first(sizes, last_use)[1] == 16000
    rng = np.random.default_rng(0)
    for _ in range(200):  # random lifetimes: neither placement ever overlaps two tensors live at one time
        n = int(rng.integers(1, 12))
        sizes = [(f"t{i}", int(rng.integers(1, 100)), i) for i in range(n)]
        last_use = {f"t{i}": i + int(rng.integers(0, 4)) for i in range(n)}
        for place in (first_fit, largest_first):
            placement = place(sizes, last_use)
            assert not _overlaps(placement, sizes, last_use)
            assert placement[1] == max(placement[0][t] + s for t, s, _ in sizes)


@pytest.mark.filterwarnings("ignore::hwgen.api.CalibrationWarning")
def test_depthwise_convs_spread_over_the_columns_only_where_that_fits_the_board(root):
    """Spreading a depthwise conv's output rows over the columns saves cycles but widens its window (more weight
    words): MobileNetV1-0.25 at 2x4 needs more block RAM than the ULX3S-85F has that way, so with the board the
    plan keeps its depthwise convs on one column; at 3x2 the spread plan fits and is kept, with fewer cycles."""
    from boards import board as get_board
    from hwgen import fit

    qm = api.quantize(root / "models" / "tiny" / "mobilenet_v1_025.pt2")
    ulx = get_board("ulx3s-85f")
    spread = fit.plan_for(qm, ArrayShape(2, 4), "ecp5")
    assert spread.unrolls and fit.estimate(spread, ulx)["brams"] > ulx.brams
    kept = fit.plan_for(qm, ArrayShape(2, 4), "ecp5", ulx)
    assert not kept.unrolls and fit.fits(fit.estimate(kept, ulx), ulx)
    small = fit.plan_for(qm, ArrayShape(3, 2), "ecp5", ulx)
    plain = make_hardware_plan(qm, ArrayShape(3, 2), small.write_lanes, small.product_stages, small.read_latency,
                               unroll=False)
    assert small.unrolls
    assert sum(c.estimate for c in estimate_cycles(small)) < sum(c.estimate for c in estimate_cycles(plain))


@pytest.mark.filterwarnings("ignore::hwgen.api.CalibrationWarning")
def test_four_write_lanes_where_an_unrolled_depthwise_conv_is_write_bound(root, cnn_path):
    """DS-CNN's depthwise convs, spread over 13x6, write 13 segments of 5 pixels per 21 k-steps: two lanes bind
    them (33 cycles), four do not (17). ECP5 plans take four lanes there, at no more arena block RAMs (four parts
    of a quarter each); a plan that unrolls nothing keeps two."""
    from hwgen import fit

    qm = api.quantize(root / "models" / "tiny" / "ds_cnn.pt2")
    shape = ArrayShape(13, 6)
    four = fit.plan_for(qm, shape, "ecp5")
    two = make_hardware_plan(qm, shape, 2, four.product_stages, four.read_latency)
    assert four.write_lanes == 4 and four.unrolls and two.unrolls
    assert fit.arena_parts(four) == [four.arena_depth // 4] * 4 and sum(fit.arena_parts(two)) == two.arena_depth
    assert fit.arena_blocks(four, "ecp5") <= fit.arena_blocks(two, "ecp5")
    cycles = {hw.write_lanes: {c.layer: c.estimate for c in estimate_cycles(hw)} for hw in (two, four)}
    depthwise = [four.layer_names[op.trace_id] for op in four.program if op.unrolled]
    assert depthwise and all(cycles[4][n] < 0.7 * cycles[2][n] for n in depthwise)
    assert fit.plan_for(api.quantize(cnn_path), shape, "ecp5").write_lanes == 2  # nothing unrolled


@pytest.mark.filterwarnings("ignore::hwgen.api.CalibrationWarning")
def test_four_write_lanes_where_residual_adds_and_short_k_convs_are_write_bound(root):
    """ResNet-8 at 4x16: its Adds write two values a cycle with two lanes, and its stem (K = 27) and 1x1 skips
    (K = 16) wait on pair writes (34 cycles a tile). Four lanes (no more arena block RAMs: 96 either way) take
    the Adds to a quarter of their values and the tile's writes to 19 cycles, under the stem's K."""
    from hwgen import fit

    qm = api.quantize(root / "models" / "tiny" / "resnet8.pt2")
    shape = ArrayShape(4, 16)
    four = fit.plan_for(qm, shape, "ecp5")
    two = make_hardware_plan(qm, shape, 2, four.product_stages, four.read_latency)
    assert four.write_lanes == 4 and not four.unrolls
    assert fit.arena_blocks(four, "ecp5") <= fit.arena_blocks(two, "ecp5")
    cycles = {hw.write_lanes: {c.layer: c.estimate for c in estimate_cycles(hw)} for hw in (two, four)}
    adds = [op for op in four.program if op.has_b]
    assert len(adds) == 3
    for op in adds:
        name = four.layer_names[op.trace_id]
        assert cycles[4][name] < 0.52 * cycles[2][name] and cycles[4][name] >= op.n_out // 4
    stem = next(op for op in four.program if op.kind_name == "mac")
    assert stem.k == 27 and cycles[4]["stem_0"] < 0.82 * cycles[2]["stem_0"]
    assert sum(cycles[4].values()) < 0.955 * sum(cycles[2].values())


@pytest.mark.filterwarnings("ignore::hwgen.api.CalibrationWarning")
def test_narrow_operands_buy_pes_past_the_dsps_in_logic_cells(cnn_path):
    """digits_cnn at 4 bits on the OrangeCrab (28 DSPs): `--array auto` takes an array with PEs past the DSPs,
    their multipliers in logic cells, for at most LUT_PE_GAIN of the fastest all-DSP array's cycles; at 8 bits
    (a logic-cell multiplier would cost more LUTs than its DSP saves) and on the iCE40 every PE has a DSP."""
    from boards import board
    from hwgen import fit

    oc, ice = board("orangecrab-25f"), board("icebreaker")
    narrow = api.quantize(cnn_path, bits=4)
    shape, est = fit.choose_array(narrow, oc)
    assert est["dsps"] == oc.dsps and est["lut_pes"] == shape.rows * shape.cols - oc.dsps > 0
    hw = fit.plan_for(narrow, shape, "ecp5", oc)
    assert hw.lut_pes == est["lut_pes"] and HardwarePlan.from_json(hw.to_json()) == hw
    without = fit.LutModel(**est["lut_model"]).luts(hw)  # the model choose_array used (calibrated, if any)
    assert est["luts"] == without + fit.multiplier_luts(hw, "ecp5") and est["luts"] > without + 20 * hw.lut_pes
    all_dsp = [fit.plan_for(narrow, s, "ecp5", oc) for s in fit.candidate_shapes(oc.dsps)]
    fastest = min(fit._total_cycles(p) for p in all_dsp if fit.usable(fit.estimate(p, oc), oc))
    assert est["estimated_cycles"] <= fit.LUT_PE_GAIN * fastest
    wide = api.quantize(cnn_path)
    assert not fit.narrow(fit.plan_for(wide, shape, "ecp5"), "ecp5")
    assert fit.choose_array(wide, oc)[1]["lut_pes"] == 0
    assert fit.choose_array(narrow, ice)[1]["lut_pes"] == 0
    assert fit.plan_for(narrow, ArrayShape(4, 4), "ice40", ice).lut_pes == 0  # no logic-cell form on the iCE40


def _export(model, shape, path):
    import torch

    torch.export.save(torch.export.export(model.eval(), (torch.zeros(1, *shape),)), str(path))
    return path


@pytest.mark.filterwarnings("ignore::hwgen.api.CalibrationWarning")
def test_arena_in_spram_keeps_every_layers_output_out_of_the_bank_it_reads(tmp_path, cnn_path):
    """The iCE40's SPRAMs are single-ported, so `plan_for` banks the arena (two banks of SPRAM_WORDS) where the
    block RAM cannot hold it: every entry's inputs lie in the bank its output does not, and only then; a plan
    that fits the block RAM keeps it."""
    from torch import nn

    from boards import board
    from hwgen import fit
    from hwgen.hwplan import SPRAM_WORDS
    from hwgen.hwplan.allocation import BankingError
    from model_zoo import Residual, wide_input_net

    icebreaker = board("icebreaker")
    model, shape = wide_input_net()
    qm = api.quantize(_export(model, shape, tmp_path / "w.pt2"), input_shape=shape)
    plain = make_hardware_plan(qm, ArrayShape(2, 2), write_lanes=1)
    assert sum(u.blocks for u in fit.memory_use(plain, "ice40")) > icebreaker.brams  # the block RAM cannot
    hw = fit.plan_for(qm, ArrayShape(2, 2), "ice40", icebreaker)
    assert hw.arena_spram and fit.spram_count(hw) == 4 and fit.arena_blocks(hw, "ice40") == 0
    assert sum(u.blocks for u in fit.memory_use(hw, "ice40")) <= icebreaker.brams
    fit.check_memory(hw, icebreaker)
    slots = {t.name: t for t in hw.tensors}
    bank = {name: t.base // SPRAM_WORDS for name, t in slots.items()}
    assert all(t.base % SPRAM_WORDS + t.size <= SPRAM_WORDS for t in hw.tensors)  # no tensor straddles the banks
    checked = 0
    for op in hw.program:
        if op.kind_name in ("mac", "max", "eltwise"):
            node = qm.graph.node(hw.layer_names[op.trace_id])
            for src in node.inputs:
                while src not in slots:
                    src = qm.graph.node(src).inputs[0]  # a Flatten aliases its input
                assert bank[src] != op.out_base // SPRAM_WORDS, (node.name, src)
                checked += 1
    assert checked >= 5
    assert not fit.plan_for(api.quantize(cnn_path), ArrayShape(2, 4), "ice40", icebreaker).arena_spram
    # a residual block of one conv reads x twice (the conv, the add): three tensors, each pair joined by a layer
    triangle = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), Residual(4, nn.ReLU()), nn.Flatten(), nn.Linear(64, 3))
    qm = api.quantize(_export(triangle, (1, 4, 4), tmp_path / "t.pt2"), input_shape=(1, 4, 4))
    with pytest.raises(BankingError, match="odd cycle"):
        make_hardware_plan(qm, ArrayShape(1, 1), write_lanes=1, arena_spram=True)
    big = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Flatten(), nn.Linear(2 * 91 * 91, 2))
    qm = api.quantize(_export(big, (1, 91, 91), tmp_path / "b.pt2"), input_shape=(1, 91, 91))
    with pytest.raises(BankingError, match="more than its 16384"):
        make_hardware_plan(qm, ArrayShape(1, 1), write_lanes=1, arena_spram=True)
