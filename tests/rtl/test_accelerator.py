"""Whole-network regression: `hwgen build` + `hwgen sim` on real Verilator, every layer bit-exact.

Reference models at 8 bits and at mixed plans (4-bit layers) on 100 test
inputs each; random small models (every supported layer, random arrays,
formats and stream stalls); a perturbed expectation that must be caught and
named.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from hwgen.build import build
from hwgen.hwplan import ArrayShape, HardwarePlan, estimate_cycles
from hwgen.quant import parse_override
from hwgen.simulate import simulate, traced_layers

from model_zoo import save_random_model  # tests/ is on sys.path (tests/conftest.py)

HWGEN = [sys.executable, "-m", "hwgen.cli"]
# the default suite's three seeds cover every unit and mapping (test_random_models_cover_every_unit); more with -m slow
DEFAULT_SEEDS = [61, 48, 51]
RANDOM_SEEDS = [*DEFAULT_SEEDS, *(pytest.param(s, marks=pytest.mark.slow) for s in (0, 1, 5, 6, 9, 14, 35, 138))]


def test_cli_build_and_sim_digits_cnn_8bit(tmp_path, cnn_path):
    out = tmp_path / "cnn8"
    subprocess.run([*HWGEN, "build", str(cnn_path), "--bits", "8", "-o", str(out)], check=True, capture_output=True)
    proc = subprocess.run([*HWGEN, "sim", str(out), "--json"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["bit_exact"] and r["inputs"] == 100 and r["mismatches"] == []
    vec = np.load(out / "vectors.npz")
    # the RTL's own outputs give the golden model's predictions, and near-float accuracy
    assert r["rtl_accuracy"] == pytest.approx(float((vec["out_fc"].argmax(1) == vec["labels"]).mean()))
    assert r["rtl_accuracy"] >= 0.95
    assert r["ideal_cycles"] == 80896 / 16
    assert r["pe_utilization"] >= 0.79  # measured 80.0% on the 4x4 array (79.1% before the preloaded origins)
    # the cycle model follows the hardware: conv1 (16 row tiles of 4 pixels, K = 9) measured 363 cycles (392
    # while every row tile loaded its window origins in `rows` cycles)
    estimate = {c.layer: c.estimate for c in estimate_cycles(HardwarePlan.load(out / "hwplan.json"))}
    conv1 = next(layer["cycles"] for layer in r["layers"] if layer["layer"] == "conv1")
    assert estimate["conv1"] <= conv1 <= estimate["conv1"] + 10
    assert r["mode"] == "fast" and r["simulated_cycles"] >= 100 * r["cycles_per_inference"]


@pytest.mark.parametrize("model, kwargs, array, stall", [
    ("digits_cnn", {"overrides": dict([parse_override("conv2=w4"), parse_override("fc=w3")])}, (3, 5), 0.0),
    # M=1 on 8 rows: 7 trailing empty result rows per tile (a fixed hang)
    pytest.param("digits_mlp", {}, (8, 8), 0.1, marks=pytest.mark.slow),
    pytest.param("digits_mlp", {"overrides": dict([parse_override("fc1=w4")]), "per_channel": True}, (2, 3), 0.1,
                 marks=pytest.mark.slow),
])
def test_reference_models_bit_exact(tmp_path, root, model, kwargs, array, stall):
    b = build(root / "models" / f"{model}.pt", tmp_path / "b", array=ArrayShape(*array), inputs=100, **kwargs)
    widths = set(b.hw.weight_widths)
    if kwargs.get("overrides"):
        assert len(widths) >= 2  # a mixed plan really packs layers at different widths
    r = simulate(b.path, stall=stall, work_dir=tmp_path / "sim")
    assert r.mismatches == [] and r.bit_exact and r.inputs == 100


@pytest.mark.filterwarnings("ignore::hwgen.api.CalibrationWarning")
def test_registers_beside_the_banks_stay_bit_exact(tmp_path, monkeypatch):
    """ECP5's read latency 5 (a register beside every bank, for memories of more than SPREAD_BANKS banks: the
    MLPerf Tiny models) forced onto a small random model: bit-exact with stalls, and a cycle later per read."""
    from hwgen import fit

    _, shape = save_random_model(11, tmp_path / "m.pt2")
    kwargs = dict(array=ArrayShape(2, 3), inputs=3, input_shape=shape, board="ulx3s-85f")
    usual = build(tmp_path / "m.pt2", tmp_path / "b4", **kwargs)
    monkeypatch.setattr(fit, "SPREAD_BANKS", 0)
    b = build(tmp_path / "m.pt2", tmp_path / "b5", **kwargs)
    assert (usual.hw.read_latency, b.hw.read_latency) == (4, 5)
    r = simulate(b.path, stall=0.15, seed=11, work_dir=tmp_path / "sim")
    assert r.mismatches == [] and r.bit_exact and r.inputs == 3
    assert sum(c.estimate for c in estimate_cycles(b.hw)) > sum(c.estimate for c in estimate_cycles(usual.hw))


@pytest.mark.filterwarnings("ignore::hwgen.api.CalibrationWarning")
@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_random_models_bit_exact(tmp_path, seed):
    rng = np.random.default_rng(seed)
    suffix = ".pt2" if seed % 2 else ".pt"
    _, shape = save_random_model(seed, tmp_path / f"m{suffix}")
    array = ArrayShape(int(rng.integers(1, 9)), int(rng.integers(1, 6)))
    # the iCE40's one-lane arena (hwgen.fit.write_lanes); ECP5's third product register (hwgen.fit.PRODUCT_STAGES)
    # and registered bank-multiplexer level (hwgen.fit.READ_LATENCY)
    board = {1: "icebreaker", 2: "ulx3s-85f"}.get(seed % 3)
    b = build(tmp_path / f"m{suffix}", tmp_path / "b", array=array, inputs=3, input_shape=shape, board=board,
              weight_bits=int(rng.choice([3, 4, 6, 8])), act_bits=int(rng.choice([5, 8])), per_channel=seed % 3 == 0)
    # (four on ECP5 only where residual Adds or spread depthwise convs make them faster at no more block RAMs:
    # never at this size, where four parts of the arena take more blocks than two)
    assert b.hw.write_lanes == (1 if board == "icebreaker" else 2)
    assert (b.hw.product_stages, b.hw.read_latency) == ((3, 4) if board == "ulx3s-85f" else (2, 3))
    r = simulate(b.path, stall=0.15 if seed % 2 else 0.0, seed=seed, work_dir=tmp_path / "sim")
    assert r.mismatches == [] and r.bit_exact and r.inputs == 3


@pytest.mark.filterwarnings("ignore::hwgen.api.CalibrationWarning")
def test_random_models_cover_every_unit(tmp_path):
    """The default suite's seeds exercise every hardware unit and layer mapping (checked on their hardware plans)."""
    from hwgen import api
    from hwgen.hwplan import make_hardware_plan
    seen = set()
    for seed in DEFAULT_SEEDS:
        _, shape = save_random_model(seed, tmp_path / f"m{seed}{'.pt2' if seed % 2 else '.pt'}")
        qm = api.quantize(tmp_path / f"m{seed}{'.pt2' if seed % 2 else '.pt'}", input_shape=shape)
        hw = make_hardware_plan(qm, ArrayShape(2, 2))
        ops = {n.name: n.op for n in qm.graph.nodes}
        for op in hw.program:
            name = hw.layer_names[op.trace_id]
            seen.add((op.kind_name, ops[name] if op.kind_name not in ("input", "output") else "-"))
            if op.kind_name == "mac" and op.groups > 1 and ops[name] == "conv2d":
                seen.add(("mac", "grouped conv2d"))
            if op.kind_name == "mac" and op.py > 0:
                seen.add(("mac", "padded"))
            if op.kind_name == "mac" and op.sy > 1:
                seen.add(("mac", "strided"))
            act = getattr(qm.graph.node(name), "activation", "none").split(":")[0]
            if act in ("leaky", "clamp"):
                seen.add(("activation", act))
    assert {("mac", "conv2d"), ("mac", "linear"), ("mac", "avgpool2d"), ("max", "maxpool2d"), ("eltwise", "add"),
            ("mac", "grouped conv2d"), ("mac", "padded"), ("mac", "strided"), ("eltwise", "concat"),
            ("eltwise", "upsample"), ("eltwise", "lut"), ("activation", "leaky"), ("activation", "clamp")} <= seen, seen


def _rewrite_manifest(path):
    manifest = json.loads((path / "build.json").read_text())
    for name in manifest["files"]:
        manifest["files"][name] = hashlib.sha256((path / name).read_bytes()).hexdigest()
    (path / "build.json").write_text(json.dumps(manifest))


def test_perturbed_expectation_is_caught_and_named(tmp_path, mlp_path):
    b = build(mlp_path, tmp_path / "b", array=ArrayShape(2, 2), inputs=3)
    bad = tmp_path / "bad"
    shutil.copytree(b.path, bad)
    vec = dict(np.load(bad / "vectors.npz"))
    vec["out_fc1"] = vec["out_fc1"].copy()
    vec["out_fc1"][1, 7] += 1
    np.savez(bad / "vectors.npz", **vec)
    _rewrite_manifest(bad)
    proc = subprocess.run([*HWGEN, "sim", str(bad), "--json"], capture_output=True, text=True)
    assert proc.returncode == 1
    r = json.loads(proc.stdout)
    assert not r["bit_exact"]
    first = r["mismatches"][0]
    assert (first["inference"], first["layer"], first["index"]) == (1, "fc1", 7)
    assert first["want"] == first["got"] + 1
    assert len(r["mismatches"]) == 1  # inferences 0 and 2 still match


@pytest.mark.parametrize("fault, writes", [("drop", 31), ("dup", 33)])
def test_fast_mode_catches_a_dropped_or_doubled_write(tmp_path, mlp_path, fault, writes):
    """The harness leaves out / repeats one trace record of fc1 (32 writes) in inference 1: the values that
    were written all match, so only the write count can tell."""
    b = build(mlp_path, tmp_path / "b", array=ArrayShape(2, 2), inputs=3)
    clean = simulate(b.path, work_dir=tmp_path / "clean")
    assert clean.bit_exact and clean.mode == "fast"
    per_inference = clean.trace_writes // 3
    names = [lay["name"] for lay in traced_layers(b.hw)]
    sizes = [lay["size"] for lay in traced_layers(b.hw)]
    assert per_inference == sum(sizes) + 10 + len(names) + 1  # writes, output beats, layer ends, inference end
    fc1_first = names.index("fc1")
    record = per_inference + sum(sizes[:fc1_first]) + fc1_first + 5  # a record inside fc1's writes, inference 1
    r = simulate(b.path, work_dir=tmp_path / fault, fault={fault: record})
    assert not r.bit_exact
    assert [(m["inference"], m["layer"], m["writes"], m["size"]) for m in r.mismatches] == [(1, "fc1", writes, 32)]
    if fault == "dup":
        assert r.mismatches[0]["wrong_values"] == 0  # a doubled write of the right value: only the count fails


def test_second_simulation_reuses_the_compiled_model(tmp_path, mlp_path):
    b = build(mlp_path, tmp_path / "b", array=ArrayShape(2, 3), inputs=5)
    cache = tmp_path / "cache"
    first = simulate(b.path, work_dir=tmp_path / "s1", cache=cache)
    second = simulate(b.path, work_dir=tmp_path / "s2", cache=cache)
    assert not first.compile_cached and first.compile_seconds > 0
    assert second.compile_cached and second.compile_seconds == 0
    assert first.bit_exact and second.bit_exact
    assert first.cycles_per_inference == second.cycles_per_inference
    assert len([p for p in cache.rglob("compiled.json")]) == 1


def test_a_model_compiled_against_another_cocotb_install_is_not_reused(monkeypatch):
    """The compiled simulator loads cocotb's libraries from the path it was built with: a new venv (the old one
    deleted) must get its own model, not a cached binary that cannot start."""
    import cocotb_tools.config

    from sim import runner

    sources = {"top.v": "module top; endmodule\n"}
    here = runner._digest(sources, "top", [])
    monkeypatch.setattr(cocotb_tools.config, "libs_dir", cocotb_tools.config.libs_dir.parent / "elsewhere" / "libs")
    assert runner._digest(sources, "top", []) != here


@pytest.mark.filterwarnings("ignore::hwgen.api.CalibrationWarning")
def test_standalone_relu_depthwise_and_odd_avgpool_bit_exact(tmp_path):
    """Layers the random zoo rarely makes: a ReLU6 the importer cannot fuse, depthwise 3x3, a 3x3 average."""
    import torch
    from torch import nn
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.MaxPool2d(2), nn.ReLU6(),
                          nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.AvgPool2d(3, 1), nn.Flatten(),
                          nn.Linear(64, 5)).eval()
    torch.export.save(torch.export.export(model, (torch.zeros(1, 2, 12, 12),)), str(tmp_path / "m.pt2"))
    b = build(tmp_path / "m.pt2", tmp_path / "b", array=ArrayShape(3, 2), inputs=3, bits=6)
    ops = {b.hw.layer_names[op.trace_id]: op.kind_name for op in b.hw.program[1:-1]}
    assert list(ops.values()) == ["mac", "max", "eltwise", "mac", "mac", "mac"]
    r = simulate(b.path, stall=0.1, work_dir=tmp_path / "sim")
    assert r.mismatches == [] and r.bit_exact and r.inputs == 3


@pytest.mark.filterwarnings("ignore::hwgen.api.CalibrationWarning")
@pytest.mark.parametrize("rows", [1, 3])
def test_short_row_tiles_bit_exact(tmp_path, rows):
    """1x1 convolutions of one or two input channels (K = 1, 2) on a one-column array: row tiles of a few cycles,
    shorter than `rows` on three rows, so the walker waits for its preloaded window origins, and the writer's
    tile counter steps again soon after a step (its look-ahead flags, TileCounter._ahead); M = 25 is no
    multiple of 3."""
    import torch
    from torch import nn
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), nn.Conv2d(2, 2, 1), nn.Flatten(), nn.Linear(50, 3)).eval()
    torch.export.save(torch.export.export(model, (torch.zeros(1, 1, 5, 5),)), str(tmp_path / "m.pt2"))
    b = build(tmp_path / "m.pt2", tmp_path / "b", array=ArrayShape(rows, 1), inputs=3)
    r = simulate(b.path, stall=0.0, work_dir=tmp_path / "sim")
    assert r.mismatches == [] and r.bit_exact and r.inputs == 3

@pytest.mark.parametrize("model, kwargs", [
    pytest.param("digits_mlp", {"method": "sqnr", "weight_budget": 6000, "cost": "hardware", "per_channel": True},
                 marks=pytest.mark.slow),
    pytest.param("digits_mlp", {"method": "sqnr", "weight_budget": 6000}, marks=pytest.mark.slow),
    pytest.param("digits_mlp", {"method": "analytic", "target_mismatch": 0.05}, marks=pytest.mark.slow),
    ("digits_mlp", {"method": "tqt", "weight_bits": 3, "act_bits": 6}),
    pytest.param("digits_cnn", {"method": "tqt", "weight_bits": 4, "act_bits": 8}, marks=pytest.mark.slow),
])
def test_every_precision_method_runs_bit_exact_on_the_rtl(tmp_path, root, model, kwargs):
    b = build(root / "models" / f"{model}.pt", tmp_path / "b", array=ArrayShape(2, 3), inputs=20, **kwargs)
    plan = json.loads((b.path / "plan.json").read_text())
    assert plan["method"] == kwargs["method"]
    r = simulate(b.path, stall=0.1, work_dir=tmp_path / "sim")
    assert r.mismatches == [] and r.bit_exact and r.inputs == 20


def test_conv1d_signal_model_bit_exact_with_1d_calibration_data(tmp_path):
    """A 1-d signal network (Conv1d, BatchNorm1d, MaxPool1d, AvgPool1d, global pool, Linear) on the RTL, calibrated
    and evaluated on labelled (N, C, L) signals from an .npz: every layer bit-exact, the labels scored."""
    import torch
    from torch import nn

    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv1d(2, 4, 5, stride=2, padding=2), nn.BatchNorm1d(4), nn.ReLU(), nn.MaxPool1d(2),
                          nn.Conv1d(4, 6, 3, padding=1, groups=2), nn.ReLU(), nn.AvgPool1d(2),
                          nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(6, 3)).eval()
    torch.export.save(torch.export.export(model, (torch.zeros(1, 2, 40),)), str(tmp_path / "sig.pt2"))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 2, 40)).astype(np.float32)
    y = model(torch.as_tensor(x)).argmax(1).numpy()
    np.savez(tmp_path / "signals.npz", x=x, y=y)
    b = build(tmp_path / "sig.pt2", tmp_path / "b", array=ArrayShape(2, 3), inputs=4, calib=tmp_path / "signals.npz")
    assert b.hw.input.shape == (2, 1, 40)
    # the global pool walks its 6 channels as output pixels (over the array's rows), one column
    assert [(op.m, op.groups, op.coutg) for op in b.hw.program if op.w_hold][-1] == (6, 1, 1)
    r = simulate(b.path, work_dir=tmp_path / "sim")
    assert r.mismatches == [] and r.bit_exact and r.inputs == 4
    assert r.rtl_accuracy == r.golden_accuracy and r.rtl_accuracy is not None


@pytest.mark.slow  # one more Verilator build (~20 s); the folding itself is checked fast in test_importer.py
@pytest.mark.filterwarnings("ignore::hwgen.api.CalibrationWarning")
def test_folded_zero_padding_wider_than_the_kernel_bit_exact(tmp_path):
    """ZeroPad2d folded into a conv gives padding (3, 4) around a 3x3 kernel: border outputs see only padding."""
    import torch
    from torch import nn

    torch.manual_seed(3)
    model = nn.Sequential(nn.ZeroPad2d(1), nn.ZeroPad2d((2, 2, 1, 1)), nn.Conv2d(1, 4, 3, stride=2, padding=1),
                          nn.ReLU(), nn.ZeroPad2d(1), nn.AvgPool2d(2), nn.Flatten(), nn.Linear(64, 3)).eval()
    torch.export.save(torch.export.export(model, (torch.zeros(1, 1, 8, 8),)), str(tmp_path / "pad.pt2"))
    b = build(tmp_path / "pad.pt2", tmp_path / "b", array=ArrayShape(2, 3), inputs=3)
    assert any(op.py == 3 and op.px == 4 for op in b.hw.program)
    r = simulate(b.path, work_dir=tmp_path / "sim")
    assert r.mismatches == [] and r.bit_exact and r.inputs == 3


@pytest.mark.filterwarnings("ignore::hwgen.api.CalibrationWarning", "ignore::hwgen.errors.ApproximationWarning")
@pytest.mark.parametrize("array", [(2, 3)])
def test_new_ops_zoo_bit_exact(tmp_path, array):
    """The op zoo (LeakyReLU, Hardtanh, five table activations, cat on channels, Upsample 2x) on the RTL: every
    layer bit-exact, the golden model equal to the independent fake-quant executor, the tables in the RTL."""
    import torch

    from hwgen import api, golden
    from hwgen.fake_quant import fake_quant_forward
    from model_zoo import NewOpsNet

    torch.manual_seed(5)
    torch.export.save(torch.export.export(NewOpsNet().eval(), (torch.zeros(1, 1, 12, 12),)), str(tmp_path / "m.pt2"))
    b = build(tmp_path / "m.pt2", tmp_path / "b", array=ArrayShape(*array), inputs=3, bits=8)
    kinds = [(b.hw.layer_names[op.trace_id], op.kind_name, op.lut, op.up, op.out_off) for op in b.hw.program[1:-1]]
    assert sum(k[2] for k in kinds) == 5 and sum(k[3] == 2 for k in kinds) == 1
    offsets = {}
    for name, *_, off in kinds:
        offsets.setdefault(name, []).append(off)
    assert sorted(v for k, v in offsets.items() if len(v) > 1) == [[0, 5 * 144]]  # cat_2: one copy per input
    # the first cat's inputs are written in place, in its format: no copy, no program entry
    tensors = {t.name: t for t in b.hw.tensors}
    assert "cat" not in offsets and tensors["branch_b"].base == tensors["cat"].base + 3 * 144
    assert tensors["tanh"].base == tensors["cat"].base and tensors["tanh"].fmt == tensors["cat"].fmt
    prep = api.prepare(tmp_path / "m.pt2")
    qm = api.quantize(prep, plan=tmp_path / "b" / "plan.json")
    assert len(b.hw.lut_words) == sum(len(t) for t in qm.tables.values())
    x = np.random.default_rng(0).normal(size=(16, 1, 12, 12))
    g = golden.run(qm, x)
    fq = fake_quant_forward(qm, prep.model.params, x)
    for n in qm.graph.nodes:
        fmt = qm.plan.input if n is qm.graph.input else qm.plan.layer(n.name).out
        np.testing.assert_array_equal(g.outputs[n.name], np.round(fq[n.name].numpy() * 2.0 ** fmt.frac), err_msg=n.name)
    r = simulate(b.path, stall=0.1, work_dir=tmp_path / "sim")
    assert r.mismatches == [] and r.bit_exact and r.inputs == 3


def test_brevitas_qonnx_model_keeps_its_formats_and_matches_brevitas(tmp_path, root):
    """The Brevitas-trained digits_cnn (4-bit weights, power-of-2 scales) from its QONNX export: the plan takes every
    format from the model's quantizers, the RTL is bit-exact with the golden model on 100 test inputs, and its
    predictions and accuracy equal Brevitas's own quantized model (loaded from its state dict) on the same inputs."""
    import sys

    import torch

    sys.path.insert(0, str(root / "models"))
    from brevitas_cnn import STATE_PATH, WEIGHT_BITS, brevitas_cnn

    b = build(root / "models" / "digits_cnn_qonnx.onnx", tmp_path / "b", array=ArrayShape(4, 4), inputs=100)
    plan = json.loads((b.path / "plan.json").read_text())
    # 3 weights, 3 biases, 2 ReLUs and the logits, plus the input
    assert plan["method"] == "qonnx+range" and any(n.startswith("qonnx: 9 formats") for n in plan["notes"])
    weighted = [lp for lp in plan["layers"] if "weight" in lp]
    assert [lp["weight"]["bits"] for lp in weighted] == [WEIGHT_BITS] * 3
    ins = [plan["input"]] + [lp["out"] for lp in plan["layers"]]
    outs = {lp["name"]: lp["out"] for lp in plan["layers"]}
    in_frac = {"conv2d": plan["input"]["frac"], "conv2d_1": outs["conv2d"]["frac"],
               "linear": outs["max_pool2d"]["frac"]}
    assert [lp["bias"]["frac"] for lp in weighted] == [in_frac[lp["name"]] + lp["weight"]["frac"] for lp in weighted]
    assert ins[0]["bits"] == 8 and outs["linear"]["bits"] == 16
    r = simulate(b.path, work_dir=tmp_path / "sim")
    assert r.mismatches == [] and r.bit_exact and r.inputs == 100
    vec = np.load(b.path / "vectors.npz")
    model = brevitas_cnn()
    model.load_state_dict(torch.load(STATE_PATH, weights_only=True))
    model.eval()
    x = vec["x_int"].reshape(-1, 1, 8, 8) * 2.0 ** -plan["input"]["frac"]  # Brevitas re-quantizes them identically
    with torch.no_grad():
        brevitas_pred = model(torch.as_tensor(x, dtype=torch.float32)).argmax(1).numpy()
    rtl_pred = vec[f"out_{b.hw.output_name}"].argmax(1)  # the RTL's outputs equal these (bit-exact above)
    assert (rtl_pred == brevitas_pred).all()
    assert r.rtl_accuracy == float((brevitas_pred == vec["labels"]).mean()) >= 0.95


@pytest.mark.slow
def test_mnist1d_conv1d_model_bit_exact_on_real_signals(tmp_path, root):
    """The MNIST-1D Conv1d network on the RTL, calibrated and scored on the generator's test signals."""
    import sys

    sys.path.insert(0, str(root / "models"))
    from train_mnist1d import MODEL_PATH, mnist1d_npz

    b = build(MODEL_PATH, tmp_path / "b", array=ArrayShape(4, 4), calib=mnist1d_npz(tmp_path / "test.npz"), inputs=50)
    r = simulate(b.path, work_dir=tmp_path / "sim")
    assert r.mismatches == [] and r.bit_exact and r.inputs == 50 and r.rtl_accuracy >= 0.9


@pytest.mark.filterwarnings("ignore::hwgen.api.CalibrationWarning")
@pytest.mark.parametrize("rows, cols", [(2, 3), (3, 1)])
def test_ecp5_dsp_form_bit_exact_under_stalls(tmp_path, rows, cols):
    """The PEs and RAM banks as `hwgen synth` builds them for ECP5 (registered MULT18X18D and DP16KD with its
    output register, sim/models/) match the golden model with random stalls on both streams, at widths that need
    sign and zero extension (5-bit unsigned or signed activations, 3..8-bit weights). One column: a tile per
    output channel, so the parameter ROM is deeper than a LUT ROM and becomes DP16KD blocks in the 36-bit mode."""
    from hwgen.build import Build
    from hwgen.simulate import accelerator_sources
    from rtl_templates.accelerator import LUT_ROM_DEPTH

    _, shape = save_random_model(DEFAULT_SEEDS[0], tmp_path / "m.pt2")
    b = build(tmp_path / "m.pt2", tmp_path / "b", array=ArrayShape(rows, cols), inputs=3, input_shape=shape,
              act_bits=5, board="orangecrab-25f")
    assert b.hw.product_stages == 3  # and a fabric register behind each DSP
    text = accelerator_sources(Build.open(b.path), "ecp5")[b.manifest["verilog"]]
    if cols == 1:
        assert len(b.hw.param_words) > LUT_ROM_DEPTH and ".DATA_WIDTH_B(32'd36)" in text
    instances = text.split("MULT18X18D #(")[1:]
    assert len(instances) == rows * cols and "product_behind" in text
    assert all('.REG_INPUTA_CLK("CLK0")' in i and '.REG_OUTPUT_CLK("CLK0")' in i for i in instances)
    # the arena's banks: DP16KD with the output register (sim/models/DP16KD.v), both replicas
    rams = text.split("DP16KD #(")[1:]
    assert len(rams) >= 2 and all('.REGMODE_B("OUTREG")' in r for r in rams)
    assert "bank0_we_q" in text  # the arena's write stage: each bank's enable in a register of its own
    r = simulate(b.path, stall=0.15, seed=3, work_dir=tmp_path / "sim", dsp="ecp5")
    assert r.mismatches == [] and r.bit_exact and r.inputs == 3 and r.dsp == "ecp5"


@pytest.mark.filterwarnings("ignore::hwgen.api.CalibrationWarning")
def test_pes_in_logic_cells_bit_exact_under_stalls(tmp_path):
    """5x6 on the OrangeCrab (28 DSPs): the last two PEs, the corner whose `done` ends every tile among them,
    multiply in logic cells (HardwarePlan.lut_pes); the ECP5 form with random stalls matches the golden model."""
    from hwgen.build import Build
    from hwgen.simulate import accelerator_sources

    _, shape = save_random_model(DEFAULT_SEEDS[2], tmp_path / "m.pt2")
    b = build(tmp_path / "m.pt2", tmp_path / "b", array=ArrayShape(5, 6), inputs=3, input_shape=shape, bits=4,
              board="orangecrab-25f")
    assert b.hw.lut_pes == 2
    assert json.loads((b.path / "report.json").read_text())["hardware"]["pes_in_logic"] == 2
    assert "30 PEs, 2 of them multiplying in logic cells" in (b.path / "report.md").read_text()
    text = accelerator_sources(Build.open(b.path), "ecp5")[b.manifest["verilog"]]
    assert text.count("MULT18X18D #(") == 28
    r = simulate(b.path, stall=0.15, seed=5, work_dir=tmp_path / "sim", dsp="ecp5")
    assert r.mismatches == [] and r.bit_exact and r.inputs == 3 and r.dsp == "ecp5"


@pytest.mark.filterwarnings("ignore::hwgen.api.CalibrationWarning")
def test_ice40_form_bit_exact_under_stalls(tmp_path):
    """The design as `hwgen synth` builds it for the iCEBreaker (two-entry walker and results FIFOs, beats taken
    straight from the engine's FIFO, a LUT parameter ROM, SB_RAM40_4K-deep banks, one write lane, two product
    stages) matches the golden model with random stalls on both streams."""
    from hwgen.build import Build
    from hwgen.simulate import accelerator_sources

    _, shape = save_random_model(DEFAULT_SEEDS[1], tmp_path / "m.pt2")
    b = build(tmp_path / "m.pt2", tmp_path / "b", array=ArrayShape(2, 3), inputs=3, input_shape=shape,
              act_bits=5, board="icebreaker")
    assert (b.hw.product_stages, b.hw.write_lanes, b.hw.read_latency) == (2, 1, 3)
    generic, ice40 = (accelerator_sources(Build.open(b.path), form)[b.manifest["verilog"]]
                      for form in ("generic", "ice40"))
    assert "result_beat" in generic and "result_beat" not in ice40  # the MAC writer's beat register: not here
    r = simulate(b.path, stall=0.15, seed=4, work_dir=tmp_path / "sim", dsp="ice40")
    assert r.mismatches == [] and r.bit_exact and r.inputs == 3 and r.dsp == "ice40"


@pytest.mark.filterwarnings("ignore::hwgen.api.CalibrationWarning")
@pytest.mark.parametrize("rows, cols, board, dsp, stall, lanes", [(3, 4, None, "generic", 0.0, 2),
                                                                   (2, 3, "icebreaker", "ice40", 0.2, 1),
                                                                   (3, 4, "ulx3s-85f", "ecp5", 0.0, 4)])
def test_unrolled_depthwise_bit_exact(tmp_path, monkeypatch, rows, cols, board, dsp, stall, lanes):
    """Depthwise convs spread over the columns (LayerOp.unroll: each array row computes neighbouring output pixels
    of one channel, the row writer stores them): stride 1 and 2, a non-square kernel, output rows that are no
    multiple of the unroll (a short last segment, LayerOp.tail); on the iCEBreaker one write lane, under stalls;
    on the ULX3S a four-lane arena (forced: at this size two lanes are as fast, so hwgen.fit keeps two)."""
    import torch
    from torch import nn

    from hwgen import fit
    monkeypatch.setitem(fit.WRITE_LANES, "ecp5", lanes)
    torch.manual_seed(11)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=4),
                          nn.ReLU(), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, (3, 2), groups=4), nn.Flatten(),
                          nn.Linear(40, 3)).eval()
    torch.export.save(torch.export.export(model, (torch.zeros(1, 2, 7, 11),)), str(tmp_path / "m.pt2"))
    b = build(tmp_path / "m.pt2", tmp_path / "b", array=ArrayShape(rows, cols), inputs=3, board=board)
    unrolled = [op for op in b.hw.program if op.unrolled]
    assert len(unrolled) == 2 and any(op.tail < op.unroll for op in unrolled) and b.hw.write_lanes == lanes
    r = simulate(b.path, stall=stall, seed=2, work_dir=tmp_path / "sim", dsp=dsp)
    assert r.mismatches == [] and r.bit_exact and r.inputs == 3
    if stall == 0.0:
        # the cycle model knows the row writer: measured 278 and 108 cycles against estimates of 261 and 91, the
        # same ~17 cycles of layer start and drain the estimate leaves out of every layer this small
        measured = {t.layer: t.cycles for t in r.layers}
        for op, est in zip(b.hw.program, estimate_cycles(b.hw)):
            if op.unrolled:
                assert est.estimate <= measured[b.hw.layer_names[op.trace_id]] <= est.estimate + 20


@pytest.mark.filterwarnings("ignore::hwgen.api.CalibrationWarning")
def test_four_lane_residual_adds_bit_exact_under_stalls(tmp_path, monkeypatch):
    """Residual Adds take four values a cycle on a four-lane arena (hwgen.fit picks it where it is faster at no
    more arena block RAMs: ResNet-8 on the ULX3S; forced here, where four parts of a tiny arena take more blocks
    than two): reads of four neighbouring values from each of two replicas at any alignment, four requantizers,
    the last cycle's one to four values (189 per tensor here), LeakyReLU and ReLU after the sum; bit-exact under
    stalls, in the ECP5 form, and the Adds take a quarter of their values' cycles."""
    import torch
    from torch import nn

    from hwgen import fit
    from model_zoo import Residual
    monkeypatch.setitem(fit.WRITE_LANES, "ecp5", 4)
    torch.manual_seed(12)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), Residual(3, nn.ReLU()),
                          Residual(3, nn.LeakyReLU(0.125)), nn.Flatten(), nn.Linear(189, 4)).eval()
    torch.export.save(torch.export.export(model, (torch.zeros(1, 2, 7, 9),)), str(tmp_path / "m.pt2"))
    b = build(tmp_path / "m.pt2", tmp_path / "b", array=ArrayShape(2, 3), inputs=3, board="ulx3s-85f")
    adds = [op for op in b.hw.program if op.has_b]
    assert b.hw.write_lanes == 4 and len(adds) == 2 and all(op.pairs and op.n_out % 4 for op in adds)
    r = simulate(b.path, stall=0.15, seed=12, work_dir=tmp_path / "sim", dsp="ecp5")
    assert r.mismatches == [] and r.bit_exact and r.inputs == 3
    fast = simulate(b.path, work_dir=tmp_path / "sim")
    for op in adds:  # 48 writing cycles of 189 values, and the pipeline's fill
        cycles = next(t.cycles for t in fast.layers if t.layer == b.hw.layer_names[op.trace_id])
        assert -(-op.n_out // 4) <= cycles <= -(-op.n_out // 4) + 20


@pytest.mark.filterwarnings("ignore::hwgen.api.CalibrationWarning")
def test_arena_in_spram_bit_exact_under_stalls_and_a_shared_bank_is_caught(tmp_path, monkeypatch):
    """A model whose arena outgrows the UP5K's block RAM keeps it in single-ported SPRAM banks (the iCE40 form,
    random stalls): bit-exact. The same model with every tensor in one bank, so a layer writes the bank it reads,
    loses those reads: the simulation must say so."""
    import torch

    from hwgen.hwplan import allocation
    from model_zoo import wide_input_net

    model, shape = wide_input_net()
    torch.export.save(torch.export.export(model, (torch.zeros(1, *shape),)), str(tmp_path / "m.pt2"))
    b = build(tmp_path / "m.pt2", tmp_path / "b", array=ArrayShape(2, 2), inputs=3, input_shape=shape,
              board="icebreaker")
    assert b.hw.arena_spram and b.hw.replicas == 2
    r = simulate(b.path, stall=0.15, seed=4, work_dir=tmp_path / "sim", dsp="ice40")
    assert r.mismatches == [] and r.bit_exact and r.inputs == 3
    monkeypatch.setattr(allocation, "two_colouring", lambda names, pairs: {name: 0 for name in names})
    shared = build(tmp_path / "m.pt2", tmp_path / "shared", array=ArrayShape(2, 2), inputs=1, input_shape=shape,
                   board="icebreaker")
    assert shared.hw.arena_spram and len({t.base // 16384 for t in shared.hw.tensors}) == 1
    r = simulate(shared.path, work_dir=tmp_path / "sim2", dsp="ice40")
    assert not r.bit_exact and r.mismatches


def test_weights_loaded_into_spram_bit_exact(tmp_path, mlp_path):
    """A plan whose weights sit in SPRAM (`weights_spram`, no bitstream contents): the harness streams the
    weight image into the `load` port while the inputs wait (both gapped at random), then every layer matches
    the golden model."""
    b = build(mlp_path, tmp_path / "b", array=ArrayShape(1, 3), inputs=3)
    plan = b.path / "hwplan.json"
    plan.write_text(json.dumps({**json.loads(plan.read_text()), "weights_spram": True}))
    _rewrite_manifest(b.path)
    r = simulate(b.path, stall=0.15, seed=2, work_dir=tmp_path / "sim", dsp="ice40")  # emitted from the new plan
    assert r.mismatches == [] and r.bit_exact and r.inputs == 3
