"""The UART host link on Verilator: valid frames give the golden class and logits; broken ones are reported."""
from __future__ import annotations

import numpy as np
import pytest

from hwgen import protocol
from hwgen.build import build
from hwgen.hwplan import ArrayShape
from rtl_templates.host_link import HostLink
from hwgen.verilog import emit_verilog
from sim import runner

DIVISOR = 8
TIMEOUT = 40 * DIVISOR


@pytest.fixture(scope="module")
def mlp_link(tmp_path_factory, mlp_path):
    tmp = tmp_path_factory.mktemp("link")
    b = build(mlp_path, tmp / "b", array=ArrayShape(4, 4), inputs=4)
    verilog = emit_verilog(HostLink(b.hw, DIVISOR, TIMEOUT), "host_link")
    return b, runner.build(verilog, "host_link", tmp / "sim")


def test_uart_frames_bit_exact_and_malformed_frames_rejected(mlp_link):
    b, build_dir = mlp_link
    store = b.hw.store_bits
    vec = np.load(b.vectors)
    out = vec[f"out_{b.hw.output_name}"]

    def infer(n):
        logits = [int(v) for v in out[n]]
        return {"name": f"inference {n}", "send": list(protocol.encode_request(vec["x_int"][n], store)),
                "expect": list(protocol.encode_response(0, int(np.argmax(logits)), logits, store)),
                "timeout_cycles": 200_000, "quiet_cycles": 4 * DIVISOR}

    def error(name, frame, status):
        return {"name": name, "send": list(frame), "expect": list(protocol.encode_response(status)),
                "timeout_cycles": 200_000, "quiet_cycles": TIMEOUT + 50}

    good = protocol.encode_request(vec["x_int"][1], store)
    bad_sum = good[:-1] + bytes([(good[-1] + 1) & 0xFF])
    short = bytes([good[0], good[1], good[2] - 1, good[3]]) + good[4:-2] + bytes([protocol.checksum(
        bytes([good[1], good[2] - 1, good[3]]) + good[4:-2])])
    cases = [
        infer(0),
        error("bad checksum", bad_sum, protocol.STATUS_CHECKSUM),
        infer(1),
        error("wrong length", short, protocol.STATUS_LENGTH),
        error("unknown command", bytes([protocol.SYNC_REQUEST, 0x07]) + good[2:], protocol.STATUS_COMMAND),
        error("truncated frame", good[:20], protocol.STATUS_TIMEOUT),
        {**infer(2), "send": [0x00, 0xFF, 0x13] + infer(2)["send"], "name": "noise, then inference 2"},
        infer(3),
    ]
    res = runner.run(build_dir, "host_link", "sim.tb_host_link", {"divisor": DIVISOR, "cases": cases}, name="link")
    assert res.tests == 1 and res.failures == 0, res.report
    for case in res.report["cases"]:
        assert case["got"] == case["want"], case["name"]
    # the host-side decoder reads the same frames
    first = protocol.decode_response(bytes(res.report["cases"][0]["got"]), store)
    assert first.ok and list(first.logits) == [int(v) for v in out[0]] and first.label == int(np.argmax(out[0]))
    assert protocol.decode_response(bytes(res.report["cases"][1]["got"]), store).message == "bad checksum"
