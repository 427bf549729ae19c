"""Golden model == torch fake-quant reference, integer for integer, on every layer."""
import numpy as np
import pytest

from hwgen import api, golden
from hwgen.data import digits
from hwgen.fixed import Fixed
from hwgen.importer import import_model
from hwgen.quant import LayerBits, QuantConfig, calibrate, quantize_params, range_plan
from hwgen.fake_quant import fake_quant_forward
from model_zoo import save_random_model


def assert_golden_equals_fake_quant(qm, params, x):
    g = golden.run(qm, x)
    fq = fake_quant_forward(qm, params, x)
    for node in qm.graph.nodes:
        fmt = qm.plan.input if node is qm.graph.input else qm.plan.layer(node.name).out
        ints = fq[node.name].numpy() * 2.0 ** fmt.frac
        assert np.array_equal(ints, np.round(ints)), node.name  # the reference lands on the grid
        mism = np.nonzero(g.outputs[node.name] != ints.astype(np.int64))
        assert mism[0].size == 0, f"layer {node.name}: {mism[0].size} mismatches, first at {tuple(m[0] for m in mism)}"
    return g


def all_digits():
    tr, te = digits("train"), digits("test")
    return np.concatenate([tr.x, te.x])


@pytest.mark.parametrize("model", ["digits_cnn", "digits_mlp"])
@pytest.mark.parametrize("cfg", [QuantConfig(8, 8), QuantConfig(4, 8, per_channel=True),
                                 QuantConfig(3, 5, percentile=99.0), QuantConfig(6, 7, overrides={"fc": LayerBits(2, 4)})])
def test_reference_models_golden_equals_fake_quant(root, model, cfg):
    im = import_model(root / "models" / f"{model}.pt")
    x = all_digits()
    assert len(x) >= 1000
    overrides = {k: v for k, v in cfg.overrides.items() if k in {n.name for n in im.graph.nodes}}
    cfg = QuantConfig(cfg.weight_bits, cfg.act_bits, per_channel=cfg.per_channel, percentile=cfg.percentile, overrides=overrides)
    qm = quantize_params(im.graph, im.params, range_plan(im.graph, im.params, calibrate(im.graph, im.params, x[:500], progress=False), cfg))
    assert_golden_equals_fake_quant(qm, im.params, x)


@pytest.mark.parametrize("seed", range(16))
def test_random_models_golden_equals_fake_quant(tmp_path, seed):
    path = tmp_path / ("m.pt" if seed % 2 == 0 else "m.pt2")
    _, shape = save_random_model(seed, path)
    im = import_model(path, input_shape=shape)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(1000, *shape)).astype(np.float32)
    cfg = QuantConfig(int(rng.integers(2, 13)), int(rng.integers(3, 13)), per_channel=bool(rng.random() < 0.5),
                      percentile=float(rng.choice([99.0, 99.9])) if rng.random() < 0.4 else None)
    qm = quantize_params(im.graph, im.params, range_plan(im.graph, im.params, calibrate(im.graph, im.params, x[:200], progress=False), cfg))
    g = assert_golden_equals_fake_quant(qm, im.params, x)
    for node in qm.graph.nodes[1:]:  # the accumulators the plan sized were never exceeded
        if node.name in g.acc_peak_bits:
            assert g.acc_peak_bits[node.name] <= qm.plan.layer(node.name).acc_bits


def test_acc_bits_known_answers():
    """Accumulator widths worked out by hand (numerics: accumulator width), not by the formula under test."""
    from hwgen import ir
    from hwgen.fixed import Fixed
    from hwgen.quant.plan import LayerPlan, required_acc_bits

    fc = ir.Linear(name="fc", inputs=("x",), shape=(2,), in_features=3, out_features=2)
    lp = LayerPlan("fc", "linear", out=Fixed(8, 4), weight=Fixed(8, 6), bias=Fixed(16, 8))
    w = np.array([[3, -5, 2], [1, 1, 1]])
    b = np.array([7, -100])
    a = Fixed(8, 4)  # |a| <= 128
    # accumulator frac 6 + 4 = 10, bias shifted left by 10 - 8 = 2
    # channel 0: (3 + 5 + 2) * 128 + 7 * 4 = 1308 > 1023: 12 bits; channel 1: 3 * 128 + 400 = 784
    assert required_acc_bits(fc, lp, [a], w, b) == 12
    assert required_acc_bits(fc, lp, [a], w, np.array([0, 0])) == 12  # 1280 still needs 12
    assert required_acc_bits(fc, lp, [a], np.array([[3, -1, 0], [1, 1, 1]]), np.array([0, 0])) == 11  # 512 > 511
    assert required_acc_bits(fc, lp, [a], np.array([[3, 0, 0], [1, 1, 1]]), np.array([0, 0])) == 10  # 384
    # per-channel weight fracs: channel 1 at frac 4 shifts its bias right by 0: 3 * 128 + 100 = 484 -> 10 bits;
    # channel 0 at frac 6 as before: 1308 -> 12
    per_ch = LayerPlan("fc", "linear", out=Fixed(8, 4), weight=Fixed(8, 6), weight_channel_frac=(6, 4),
                       bias=Fixed(16, 8), bias_channel_frac=(8, 8))
    assert required_acc_bits(fc, per_ch, [a], w, b) == 12
    # Add: align both inputs to frac 5: 128 << 2 + 32 = 544 -> 11 bits
    add = ir.Add(name="add", inputs=("p", "q"), shape=(4,))
    assert required_acc_bits(add, LayerPlan("add", "add", out=Fixed(8, 3)), [Fixed(8, 3), Fixed(6, 5)]) == 11
    # AvgPool 3x3 of u8 (|a| <= 255) with reciprocal 57: 9 * 255 * 57 = 130815 -> 18 bits
    pool = ir.AvgPool2d(name="pool", inputs=("x",), shape=(1, 1, 1), kernel=(3, 3), stride=(3, 3), padding=(0, 0))
    lp_pool = LayerPlan("pool", "avgpool2d", out=Fixed(8, 0, False), reciprocal=Fixed(8, 9, False), reciprocal_value=57)
    assert required_acc_bits(pool, lp_pool, [Fixed(8, 0, False)]) == 18


def test_acc_bits_hold_a_bias_dominated_layer(tmp_path):
    # Regression (found by the accelerator regression): a formats-only bound, w.bits + a.bits
    # + log2(fan-in) + 2, ignored a large per-channel bias and undersized this model's layer '4'.
    save_random_model(21, tmp_path / "m21.pt2")
    prep = api.prepare(tmp_path / "m21.pt2")
    qm = api.quantize(prep, weight_bits=4, act_bits=8, per_channel=True)
    g = golden.run(qm, prep.test.x)  # raised "accumulator ... overflowed" before the fix
    assert g.acc_peak_bits["4"] <= qm.plan.layer("4").acc_bits


def test_eval_8bit_within_one_point_and_4bit_runs(cnn_path):
    r8 = api.evaluate(cnn_path, bits=8)
    assert r8.inputs == 360
    assert abs(r8.fixed_accuracy - r8.float_accuracy) <= 0.01
    r4 = api.evaluate(cnn_path, weight_bits=4, act_bits=8)
    assert r4.weight_bits_total * 2 == r8.weight_bits_total
    assert 0.5 < r4.fixed_accuracy <= 1.0


def test_synthetic_calibration_warns_and_reports_sqnr(tmp_path):
    import torch
    from torch import nn
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 5)).eval()
    torch.export.save(torch.export.export(m, (torch.zeros(1, 3, 6, 6),)), str(tmp_path / "m.pt2"))
    with pytest.warns(api.CalibrationWarning, match="synthetic"):
        r = api.evaluate(tmp_path / "m.pt2", bits=8)
    assert r.float_accuracy is None and r.output_sqnr_db > 20


def test_input_quantization_matches_format(cnn_path):
    qm = api.quantize(cnn_path, bits=8)
    assert qm.plan.input == Fixed(8, 7, False)  # digits in [0, 1]: one integer bit, unsigned
