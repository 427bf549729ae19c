"""`hwgen run` host side over a real socket, against a board emulator that speaks hwgen.protocol.

The emulator answers from the build's golden vectors; the RTL's side of the
same protocol is checked on Verilator in tests/rtl/test_host_link.py.
"""
from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest

from hwgen import protocol
from hwgen.build import build
from hwgen.data import digits
from hwgen.fixed import Fixed
from hwgen.hwplan import ArrayShape


def serve(sock: socket.socket, vec, hw, corrupt: bool) -> None:
    conn, _ = sock.accept()
    with conn:
        buf, image = b"", b""
        while True:
            data = conn.recv(4096)
            if not data:
                return
            buf += data
            while len(buf) >= 4 and len(buf) >= 5 + buf[2] + (buf[3] << 8):  # every complete frame (two in flight)
                size = 5 + buf[2] + (buf[3] << 8)
                frame, buf = buf[:size], buf[size:]
                assert frame[0] == protocol.SYNC_REQUEST and sum(frame[1:]) & 0xFF == 0
                if frame[1] == protocol.CMD_LOAD:  # weights in SPRAM: the image in chunks, before any inference
                    image += frame[4:-1]
                    conn.sendall(protocol.encode_response(protocol.STATUS_LOADED))
                    continue
                if hw.weights_spram:
                    assert image.rstrip(b"\0") == hw.weight_image().rstrip(b"\0")
                values = protocol.decode_values(frame[4:-1], hw.input.size, hw.input.fmt)
                n = int(np.nonzero((vec["x_int"] == values).all(axis=1))[0][0])
                logits = [int(v) for v in vec["out_fc2"][n]]
                reply = protocol.encode_response(0, int(np.argmax(logits)), logits, hw.output.fmt)
                if corrupt:
                    reply = reply[:-1] + bytes([reply[-1] ^ 1])
                conn.sendall(b"\x00\x13" + reply)  # line noise before the frame is skipped


@pytest.mark.parametrize("corrupt, weights_spram", [(False, False), (True, False), (False, True)])
def test_run_talks_the_protocol(tmp_path, mlp_path, corrupt, weights_spram):
    """`weights_spram`: the plan says the weights are loaded at start; `hwgen run` sends the image first."""
    b = build(mlp_path, tmp_path / "b", array=ArrayShape(2, 2), inputs=5)
    if weights_spram:
        from hwgen.build import Build
        from hwgen.hwplan import HardwarePlan

        plan = b.path / "hwplan.json"
        plan.write_text(json.dumps({**json.loads(plan.read_text()), "weights_spram": True}))
        manifest = json.loads((b.path / "build.json").read_text())
        manifest["files"]["hwplan.json"] = hashlib.sha256(plan.read_bytes()).hexdigest()
        (b.path / "build.json").write_text(json.dumps(manifest))
        b = Build.open(b.path)
        assert b.hw.weights_spram and isinstance(b.hw, HardwarePlan)
    vec = np.load(b.vectors)
    np.save(tmp_path / "x.npy", digits("test").x[:3])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    t = threading.Thread(target=serve, args=(sock, vec, b.hw, corrupt), daemon=True)
    t.start()
    proc = subprocess.run([sys.executable, "-m", "hwgen.cli", "run", str(tmp_path / "x.npy"), "--board", "icebreaker",
                           "--port", f"socket://127.0.0.1:{sock.getsockname()[1]}", "--build", str(b.path), "--json"],
                          capture_output=True, text=True, timeout=60)
    sock.close()
    if corrupt:
        assert proc.returncode == 1 and "checksum" in proc.stderr
        return
    assert proc.returncode == 0, proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["label"] for r in rows] == [int(np.argmax(v)) for v in vec["out_fc2"][:3]]
    assert [r["logits"] for r in rows] == vec["out_fc2"][:3].tolist()


def test_request_and_response_frames():
    """Values packed at their format's width: 9-bit values straddle bytes, 4-bit ones share them."""
    s9, u4 = Fixed(9, 0, True), Fixed(4, 0, False)
    frame = protocol.encode_request([0, 1, -1, 127], s9)
    assert frame[:4] == bytes([0xA5, 0x01, 5, 0]) and sum(frame[1:]) & 0xFF == 0  # 36 bits in 5 bytes
    assert int.from_bytes(frame[4:9], "little") == 0 | 1 << 9 | 0x1FF << 18 | 127 << 27
    assert protocol.encode_values([1, 15, 3], u4) == bytes([0xF1, 0x03])
    assert protocol.decode_values(bytes([0xF1, 0x03]), 3, u4) == [1, 15, 3]
    resp = protocol.encode_response(0, 2, [5, -3, 7], s9)
    assert len(resp) == 7 + 4 and protocol.decode_response(resp, s9) == protocol.Response(0, 2, (5, -3, 7))
    many = list(range(-150, 150)) + [-1] * 340  # an autoencoder's 640 outputs: 16-bit class and count
    wide = protocol.encode_response(0, 299, many, s9)
    assert wide[2:6] == bytes([299 & 0xFF, 299 >> 8, 640 & 0xFF, 640 >> 8])
    assert protocol.response_length(wide, s9) == len(wide) == 7 + 720
    assert protocol.decode_response(wide, s9) == protocol.Response(0, 299, tuple(many))
    assert protocol.decode_response(protocol.encode_response(4), s9).message.startswith("timeout")
    with pytest.raises(protocol.ProtocolError, match="checksum"):
        protocol.decode_response(resp[:-1] + b"\x00", s9)
    with pytest.raises(protocol.ProtocolError, match="does not fit"):
        protocol.encode_request([300], s9)
