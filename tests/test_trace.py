"""The trace checker on hand-written trace files: known answers, no simulator needed."""
from __future__ import annotations

import numpy as np
import pytest

from sim.harness import INFER, LAYER, OUTPUT, WRITE, TraceFormat
from sim.trace import TraceError, check, decode

FMT = TraceFormat(layer_bits=3, index_bits=5, store_bits=6)
LAYERS = [{"trace_id": 0, "name": "input", "size": 3, "shape": [3]},
          {"trace_id": 2, "name": "fc", "size": 2, "shape": [1, 2]}]


def record(tag: int, payload: int) -> str:
    return f"{(tag << FMT.payload_bits) | payload:0{FMT.hex_digits}x}\n"


def write(layer: int, index: int, value: int, sat: int = 0) -> str:
    data = value & ((1 << FMT.store_bits) - 1)
    return record(WRITE, (layer << (FMT.index_bits + FMT.store_bits + 1)) | (sat << (FMT.index_bits + FMT.store_bits))
                  | (data << FMT.index_bits) | index)


def inference(x, fc, cycles=40, fc_order=None):
    text = "".join(write(0, i, v) for i, v in enumerate(x)) + record(LAYER, (0 << 32) | 5)
    text += "".join(write(2, i, fc[i]) for i in (fc_order or range(len(fc)))) + record(LAYER, (2 << 32) | 30)
    text += "".join(record(OUTPUT, (int(i == len(fc) - 1) << FMT.store_bits) | (v & 63)) for i, v in enumerate(fc))
    return text + record(INFER, cycles)


def expected():
    return {"input": np.array([[1, -2, 3], [4, 5, -6]]), "fc": np.array([[-7, 8], [9, -10]])}


def test_a_clean_trace_checks_and_reports_cycles(tmp_path):
    f = tmp_path / "t.hex"
    f.write_text(inference([1, -2, 3], [-7, 8], 40) + inference([4, 5, -6], [9, -10], 41, fc_order=[1, 0]))
    tags, payloads = decode(f, FMT)
    assert list(tags[:4]) == [WRITE, WRITE, WRITE, LAYER]
    rep = check(f, FMT, LAYERS, expected(), "fc", 2)
    assert rep["mismatches"] == [] and rep["error"] is None
    assert [i["cycles"] for i in rep["inferences"]] == [40, 41]
    assert rep["predictions"] == [1, 0]
    assert rep["layer_cycles"] == {"input": 5, "fc": 25, "(output stream)": 9}


def test_a_wrong_value_is_named(tmp_path):
    f = tmp_path / "t.hex"
    f.write_text(inference([1, -2, 3], [-7, 8]) + inference([4, 5, -6], [9, -11]))
    rep = check(f, FMT, LAYERS, expected(), "fc", 2)
    (bad,) = rep["mismatches"]
    assert (bad["inference"], bad["layer"], bad["index"], bad["coord"], bad["got"], bad["want"]) == \
        (1, "fc", 1, [0, 1], -11, -10)


def test_a_missing_or_extra_write_fails_even_with_right_values(tmp_path):
    f = tmp_path / "t.hex"
    f.write_text(inference([1, -2, 3], [-7, 8], fc_order=[0, 1, 1]) + inference([4, 5, -6], [9, -10]))
    bad = check(f, FMT, LAYERS, expected(), "fc", 2)["mismatches"]
    assert [(m["inference"], m["layer"], m["writes"], m["wrong_values"]) for m in bad] == [(0, "fc", 3, 0)]
    lines = (inference([1, -2, 3], [-7, 8]) + inference([4, 5, -6], [9, -10])).splitlines(keepends=True)
    del lines[1]  # the input's second write of inference 0
    f.write_text("".join(lines))
    bad = check(f, FMT, LAYERS, expected(), "fc", 2)["mismatches"]
    assert [(m["inference"], m["layer"], m["writes"], m["index"]) for m in bad] == [(0, "input", 2, 1)]


def test_unfinished_runs_unknown_layers_and_truncated_files(tmp_path):
    f = tmp_path / "t.hex"
    f.write_text(inference([1, -2, 3], [-7, 8]))
    assert "finished 1 of 2" in check(f, FMT, LAYERS, expected(), "fc", 2)["error"]
    f.write_text(write(5, 0, 1) + record(INFER, 3))
    assert "unknown layer 5" in check(f, FMT, LAYERS, expected(), "fc", 1)["error"]
    f.write_text(inference([1, -2, 3], [-7, 8])[:-3])
    with pytest.raises(TraceError, match="truncated"):
        decode(f, FMT)
