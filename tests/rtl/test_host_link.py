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


@pytest.fixture(scope="module", params=[False, True], ids=["ice40_form", "ecp5_form"])
def mlp_link(tmp_path_factory, mlp_path, request):
    """The link as the iCE40 builds it, and as ECP5 does (`pipelined`: the buffers' reads registered in LATCH
    states, the UART receiver's byte strobe registered)."""
    tmp = tmp_path_factory.mktemp("link")
    b = build(mlp_path, tmp / "b", array=ArrayShape(4, 4), inputs=4)
    verilog = emit_verilog(HostLink(b.hw, DIVISOR, TIMEOUT, pipelined=request.param), "host_link")
    return b, runner.build(verilog, "host_link", tmp / "sim")


def test_uart_frames_bit_exact_and_malformed_frames_rejected(mlp_link):
    b, build_dir = mlp_link
    fin, fout = b.hw.input.fmt, b.hw.output.fmt
    vec = np.load(b.vectors)
    out = vec[f"out_{b.hw.output_name}"]

    def infer(n):
        logits = [int(v) for v in out[n]]
        return {"name": f"inference {n}", "send": list(protocol.encode_request(vec["x_int"][n], fin)),
                "expect": list(protocol.encode_response(0, int(np.argmax(logits)), logits, fout)),
                "timeout_cycles": 200_000, "quiet_cycles": 4 * DIVISOR}

    def error(name, frame, status):
        return {"name": name, "send": list(frame), "expect": list(protocol.encode_response(status)),
                "timeout_cycles": 200_000, "quiet_cycles": TIMEOUT + 50}

    good = protocol.encode_request(vec["x_int"][1], fin)
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
    first = protocol.decode_response(bytes(res.report["cases"][0]["got"]), fout)
    assert first.ok and list(first.logits) == [int(v) for v in out[0]] and first.label == int(np.argmax(out[0]))
    assert protocol.decode_response(bytes(res.report["cases"][1]["got"]), fout).message == "bad checksum"


@pytest.mark.parametrize("divisor", [4, pytest.param(24, marks=pytest.mark.slow)])
def test_back_to_back_inferences_overlap_the_link_and_compute(tmp_path, cnn_path, divisor):
    """digits_cnn requests sent back to back (two in flight) over real UART bits: every response right, and one
    inference per max(link time, compute time), within 10%. Divisor 4 (3 Mbaud at 12 MHz) is compute-bound,
    24 link-bound."""
    from hwgen.simulate import simulate

    b = build(cnn_path, tmp_path / "b", array=ArrayShape(4, 4), inputs=8)
    compute = simulate(b.path, work_dir=tmp_path / "sim").cycles_per_inference
    fin, fout = b.hw.input.fmt, b.hw.output.fmt
    vec = np.load(b.vectors)
    out = vec[f"out_{b.hw.output_name}"]
    frames = [list(protocol.encode_request(x, fin)) for x in vec["x_int"]]
    expect = [list(protocol.encode_response(0, int(np.argmax(o)), [int(v) for v in o], fout)) for o in out]
    verilog = emit_verilog(HostLink(b.hw, divisor, 40 * divisor), "host_link")
    job = {"divisor": divisor, "cases": [], "stream": {"frames": frames, "response_lengths": [len(e) for e in expect],
                                                       "window": 2, "timeout_cycles": 2_000_000}}
    res = runner.run(runner.build(verilog, "host_link", tmp_path / "lsim"), "host_link", "sim.tb_host_link", job,
                     name="stream")
    assert res.failures == 0, res.report
    assert res.report["stream"]["got"] == [byte for e in expect for byte in e]
    ends = res.report["stream"]["ends"]
    period = (ends[-1] - ends[1]) / (len(ends) - 2)  # steady state, after the first two
    req, resp = protocol.frame_bytes(b.hw.input.size, fin, b.hw.output.size, fout)
    link = max(req * 10 * divisor, resp * (10 * divisor + 1))
    bound = max(link, compute)
    print(f"divisor {divisor}: {period:.0f} cycles/inference; link {link}, compute {compute:.0f} "
          f"({'link' if link > compute else 'compute'}-bound); {bound / period:.1%} of the bound")
    assert period <= bound / 0.9


@pytest.mark.filterwarnings("ignore::hwgen.api.CalibrationWarning")
def test_more_than_255_outputs_come_back_with_a_16_bit_class_and_count(tmp_path):
    """A Linear layer with 300 outputs (an autoencoder's output is 640): the frame's class and count are 16 bits
    and every logit comes back bit-exact."""
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 300)).eval()
    with torch.no_grad():
        model[1].bias[290] += 2.0  # the class lands above 255: its high byte is sent too
    torch.export.save(torch.export.export(model, (torch.zeros(1, 1, 4, 4),)), str(tmp_path / "wide.pt2"))
    b = build(tmp_path / "wide.pt2", tmp_path / "b", array=ArrayShape(1, 4), inputs=1)
    fin, fout = b.hw.input.fmt, b.hw.output.fmt
    vec = np.load(b.vectors)
    logits = [int(v) for v in vec[f"out_{b.hw.output_name}"][0]]
    assert len(logits) == 300 and int(np.argmax(logits)) > 255
    case = {"name": "300 outputs", "send": list(protocol.encode_request(vec["x_int"][0], fin)),
            "expect": list(protocol.encode_response(0, int(np.argmax(logits)), logits, fout)),
            "timeout_cycles": 400_000, "quiet_cycles": 4 * DIVISOR}
    verilog = emit_verilog(HostLink(b.hw, DIVISOR, TIMEOUT), "host_link")
    res = runner.run(runner.build(verilog, "host_link", tmp_path / "sim"), "host_link", "sim.tb_host_link",
                     {"divisor": DIVISOR, "cases": [case]}, name="wide")
    assert res.failures == 0, res.report
    got = protocol.decode_response(bytes(res.report["cases"][0]["got"]), fout)
    assert got.ok and list(got.logits) == logits and got.label == int(np.argmax(logits))


def test_weights_in_spram_load_over_the_link_before_the_first_inference(tmp_path, mlp_path):
    """A design whose weights sit in SPRAM (no bitstream contents) takes them in load frames, chunks of a
    request's length, the last padded; then its inferences are bit-exact, and a second image (sent between
    inferences) reloads them: the padding past each image is dropped."""
    from dataclasses import replace

    b = build(mlp_path, tmp_path / "b", array=ArrayShape(1, 4), inputs=3, act_bits=5)  # 40-byte requests
    hw = replace(b.hw, weights_spram=True)
    fin, fout = hw.input.fmt, hw.output.fmt
    vec = np.load(b.vectors)
    out = vec[f"out_{hw.output_name}"]
    chunk = protocol.packed_bytes(hw.input.size, fin.bits)
    image = hw.weight_image()
    loads = protocol.encode_load(image, chunk)
    assert len(image) % chunk and len(loads) >= 2  # the last chunk is padded

    def infer(n):
        logits = [int(v) for v in out[n]]
        return {"name": f"inference {n}", "send": list(protocol.encode_request(vec["x_int"][n], fin)),
                "expect": list(protocol.encode_response(0, int(np.argmax(logits)), logits, fout)),
                "timeout_cycles": 400_000, "quiet_cycles": 4 * DIVISOR}

    def load(i, frame):
        return {"name": f"load {i}", "send": list(frame), "expect": list(protocol.encode_response(protocol.STATUS_LOADED)),
                "timeout_cycles": 400_000, "quiet_cycles": 0}

    cases = [*(load(i, f) for i, f in enumerate(loads)), infer(0), *(load(i, f) for i, f in enumerate(loads)),
             infer(1), infer(2)]
    verilog = emit_verilog(HostLink(hw, DIVISOR, TIMEOUT), "host_link")
    res = runner.run(runner.build(verilog, "host_link", tmp_path / "sim"), "host_link", "sim.tb_host_link",
                     {"divisor": DIVISOR, "cases": cases}, name="load")
    assert res.failures == 0, res.report
    for case in res.report["cases"]:
        assert case["got"] == case["want"], case["name"]
    assert protocol.decode_response(bytes(res.report["cases"][0]["got"]), fout).loaded
