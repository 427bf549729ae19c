"""`hwgen sweep`: real builds, Verilator cycles and iCE40 synthesis per point, locally and as Ray tasks."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hwgen import sweep as sw
from hwgen.cache import ResultCache, digest

HWGEN = [sys.executable, "-m", "hwgen.cli"]


def test_bits_and_grid():
    assert sw.parse_bits("2..4") == [2, 3, 4] and sw.parse_bits("4,8") == [4, 8]
    with pytest.raises(sw.HwgenError):
        sw.parse_bits("1..4")
    points = sw.grid(["range", "sqnr"], [4, 8], ["1x2", "2x2"], ["icebreaker"])
    assert len(points) == 8 and len(set(points)) == 8


def test_pareto_marks_the_front():
    rows = [{"status": "ok", "fixed_accuracy": a, "latency_us": lat, "luts": lut}
            for a, lat, lut in [(0.9, 10, 100), (0.95, 20, 300), (0.9, 30, 50), (0.8, 40, 400)]]
    rows.append({"status": "failed"})
    sw.mark_pareto(rows)
    assert [r["pareto_latency"] for r in rows] == [True, True, False, False, False]
    assert [r["pareto_luts"] for r in rows] == [False, True, True, False, False]


def test_cache_is_content_addressed_and_atomic(tmp_path):
    store = ResultCache(tmp_path)
    key = digest("stage", {"b": 1, "a": 2})
    assert key == digest("stage", {"a": 2, "b": 1}) != digest("stage", {"a": 2, "b": 2})
    assert store.get("s", key) is None
    store.put("s", key, {"x": 1})
    assert store.get("s", key) == {"x": 1}
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.slow  # one synthesis and one misfit, twice over, then the rerun (~2 minutes): .ci/run's second step
def test_sweep_locally_and_on_ray_gives_identical_results_and_reruns_from_cache(tmp_path, mlp_path):
    """A point on the iCEBreaker (real yosys/nextpnr) and one that cannot fit (16 PEs, 8 DSPs); local pool vs a
    local Ray instance, each with its own cache so both really compute; then a rerun served from the cache."""
    import ray  # part of the test extra: a missing ray fails, it does not skip
    points = [sw.SweepPoint("range", 8, "1x1", "icebreaker"), sw.SweepPoint("range", 8, "4x4", "icebreaker")]
    local = sw.sweep(mlp_path, points, sw.SweepSettings(inputs=2, cache=str(tmp_path / "c_local")), workers=2)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        remote = sw.sweep(mlp_path, points, sw.SweepSettings(inputs=2, cache=str(tmp_path / "c_ray")),
                          ray_address="local")
    finally:
        ray.shutdown()
    assert local.cache_hits == 0 and remote.cache_hits == 0
    assert json.dumps(local.to_json(), sort_keys=True) == json.dumps(remote.to_json(), sort_keys=True)
    ok, failed = local.rows
    assert ok["status"] == "ok" and ok["fits"] and ok["bit_exact"] and ok["luts"] > 0 and ok["dsps"] == 1
    assert ok["latency_us"] == pytest.approx(ok["cycles_per_inference"] / ok["clock_mhz"])
    assert ok["fixed_accuracy"] >= 0.9 and ok["pareto_latency"]
    assert failed["status"] == "failed" and "does not fit" in failed["reason"]
    again = sw.sweep(mlp_path, points, sw.SweepSettings(inputs=2, cache=str(tmp_path / "c_local")), workers=2)
    assert again.to_json() == local.to_json()
    assert again.cache_hits == again.stages == 6  # build, cycles and synthesis of both points, the misfit too


@pytest.mark.slow  # builds and simulates four points (~30 s)
def test_cli_sweep_writes_table_json_and_plot(tmp_path, mlp_path):
    out = tmp_path / "out"
    proc = subprocess.run([*HWGEN, "sweep", str(mlp_path), "--method", "range,sqnr", "--bits", "4", "--array", "1x2",
                           "--cache", str(tmp_path / "cache"), "-o", str(out)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    data = json.loads((out / "sweep.json").read_text())
    assert data["schema"] == "hwgen.sweep" and [p["method"] for p in data["points"]] == ["range", "sqnr"]
    assert all(p["status"] == "ok" and p["cycles_per_inference"] > 0 for p in data["points"])
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "range w4a8 1x2" in proc.stdout and "0 of 4 stages served from the cache" in proc.stdout


def test_lut_model_is_calibrated_by_recorded_syntheses(tmp_path, mlp_path):
    """Recorded (design, LUTs) pairs from a known linear law: the calibrated model recovers it, and
    `--array auto` uses it (a LUT-hungry law leaves only a smaller array)."""
    from boards import board
    from hwgen import api
    from hwgen.fit import DEFAULT_LUT_MODEL, LutModel, calibrated, choose_array, record_luts
    from hwgen.hwplan import ArrayShape, make_hardware_plan

    qm = api.quantize(mlp_path)
    cache = str(tmp_path / "cache")
    assert calibrated("ice40", cache) == DEFAULT_LUT_MODEL
    truth = LutModel(1000, 20.0, 50, 30)
    for r, c in [(1, 1), (1, 2), (2, 1), (2, 2), (1, 4), (4, 2)]:
        hw = make_hardware_plan(qm, ArrayShape(r, c))
        record_luts(hw, "ice40", truth.luts(hw), cache)
    fitted = calibrated("ice40", cache)
    assert fitted.samples == 6
    assert [round(v) for v in (fitted.base, fitted.per_pe_acc_bit, fitted.per_row, fitted.per_col_acc_bit)] == \
        [1000, 20, 50, 30]
    assert calibrated("ecp5", cache) == DEFAULT_LUT_MODEL  # per family
    default_choice, _ = choose_array(qm, board("icebreaker"), cache=str(tmp_path / "empty"))
    hungry = LutModel(3000, 40.0, 50, 30)
    for key, hw in enumerate(make_hardware_plan(qm, ArrayShape(r, c)) for r, c in [(1, 1), (1, 2), (2, 1), (2, 2), (4, 2)]):
        record_luts(hw, "ice40", hungry.luts(hw), str(tmp_path / "hungry"))
    hungry_choice, est = choose_array(qm, board("icebreaker"), cache=str(tmp_path / "hungry"))
    assert est["lut_model"]["samples"] == 5
    assert hungry_choice.rows * hungry_choice.cols < default_choice.rows * default_choice.cols
