"""MLPerf Tiny ports on the accelerator: built, simulated bit-exactly on Verilator in the fast mode.

Slow (minutes): `.ci/run` runs them as its second step (`pytest -m slow`).
"""
from __future__ import annotations

import time

import pytest

from hwgen.build import build
from hwgen.hwplan import ArrayShape
from hwgen.simulate import simulate


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::hwgen.api.CalibrationWarning")
def test_resnet8_100_inputs_bit_exact_in_minutes(tmp_path, root):
    """ResNet-8 with its skip connections, 100 inputs, every layer bit-exact (~25M simulated cycles)."""
    b = build(root / "models" / "tiny" / "resnet8.pt2", tmp_path / "b", array=ArrayShape(8, 8), inputs=100)
    t0 = time.monotonic()
    r = simulate(b.path, work_dir=tmp_path / "sim", cache=tmp_path / "cache")
    seconds = time.monotonic() - t0
    assert r.bit_exact and r.inputs == 100 and r.mismatches == []
    assert not r.compile_cached
    assert r.simulated_cycles >= 100 * r.cycles_per_inference
    print(f"resnet8 8x8: 100 inputs in {seconds:.0f} s (compile {r.compile_seconds:.0f} s), "
          f"{r.cycles_per_inference:.0f} cycles/inference, {r.cycles_per_second / 1e3:.0f}k cycles/s")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::hwgen.api.CalibrationWarning")
@pytest.mark.parametrize("model", ["ds_cnn", "fc_autoencoder", "mobilenet_v1_025"])
def test_tiny_models_bit_exact(tmp_path, root, model):
    b = build(root / "models" / "tiny" / f"{model}.pt2", tmp_path / "b", array=ArrayShape(8, 8), inputs=3)
    r = simulate(b.path, work_dir=tmp_path / "sim")
    assert r.bit_exact and r.inputs == 3 and r.mismatches == []
