"""`hwgen run`: the host side of the UART link (pyserial), speaking hwgen.protocol."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from . import protocol
from .protocol import DEFAULT_BAUD
from .build import Build
from .errors import HwgenError
from .fixed import Fixed, quantize_real


def read_response(port, out_fmt: Fixed, timeout: float) -> protocol.Response:
    data = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        chunk = port.read(1)
        if not chunk:
            continue
        if not data and chunk[0] != protocol.SYNC_RESPONSE:
            continue  # line noise before the frame
        data += chunk
        size = protocol.response_length(bytes(data), out_fmt)
        if size is not None and len(data) >= size:
            return protocol.decode_response(bytes(data), out_fmt)
    raise HwgenError(f"no complete response within {timeout} s ({len(data)} bytes: {bytes(data).hex()}); "
                     "check the port, the baud rate and that the board runs this build")


WINDOW = 2  # requests in flight (hwgen.protocol: the board buffers two)


def synthesized_baud(build: Build, board_name: str | None) -> int:
    """The rate `hwgen synth` built the board's link for (its synth.json), else 3 Mbaud."""
    report = build.path / f"synth-{board_name}" / "synth.json"
    if board_name and report.exists():
        return int(json.loads(report.read_text()).get("baud", DEFAULT_BAUD))
    return DEFAULT_BAUD


def run_on_board(build_dir: str | Path, inputs: str | Path, port_name: str, *, baud: int | None = None,
                 timeout: float = 2.0, board_name: str | None = None):
    import serial

    b = Build.open(build_dir)
    hw = b.hw
    baud = baud or synthesized_baud(b, board_name)
    in_fmt, out_fmt = hw.input.fmt, hw.output.fmt  # the plan's input format and the logits' format
    x = np.load(inputs, allow_pickle=False)
    shape = tuple(hw.input.shape)
    if x.shape == shape:
        x = x[None]
    if x.shape[1:] != shape:
        raise HwgenError(f"{str(inputs)!r} holds samples of shape {x.shape[1:]}; this build takes {shape}")
    q, _ = quantize_real(x.astype(np.float64), in_fmt)
    frames = [protocol.encode_request(sample, in_fmt) for sample in q.reshape(len(q), -1)]
    with serial.serial_for_url(port_name, baudrate=baud, timeout=0.05) as port:
        port.reset_input_buffer()
        if hw.weights_spram:  # an SPRAM has no bitstream contents: the weights go over the link first
            for i, frame in enumerate(protocol.encode_load(hw.weight_image(), protocol.packed_bytes(
                    hw.input.size, in_fmt.bits))):
                port.write(frame)
                resp = read_response(port, out_fmt, timeout)
                if not resp.loaded:
                    raise HwgenError(f"weight load frame {i}: the board answered {resp.message!r}")
        for frame in frames[:WINDOW]:  # the board holds two requests: the next one arrives while it computes
            port.write(frame)
        for i in range(len(frames)):
            resp = read_response(port, out_fmt, timeout)
            if i + WINDOW < len(frames):
                port.write(frames[i + WINDOW])
            if not resp.ok:
                raise HwgenError(f"input {i}: the board rejected the frame: {resp.message}")
            yield {"input": i, "label": resp.label, "logits": list(resp.logits),
                   "logits_real": [round(v * out_fmt.step, 6) for v in resp.logits], "board": board_name}
