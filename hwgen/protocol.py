"""The UART host-link frame format, shared by the host (`hwgen run`), the RTL and its testbench.

Request  (host -> board): A5 | 01 | len_lo len_hi | payload[len] | chk
Response (board -> host): 5A | status | class | n | logits[n * vbytes] | chk   (status 0)
                          5A | status | chk                                   (status != 0)

Each input value and logit is `vbytes` = ceil(store_bits / 8) bytes, little
endian, two's complement. `chk` makes the sum of every byte after the sync
byte equal 0 modulo 256. A frame with a wrong command, length or checksum,
or one that stops arriving for the timeout, is answered with an error status.
The board then ignores bytes until the line has been idle for the timeout,
so a broken frame cannot wedge it or start a false frame.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import HwgenError

SYNC_REQUEST = 0xA5
SYNC_RESPONSE = 0x5A
CMD_INFER = 0x01
STATUS = {0: "ok", 1: "bad checksum", 2: "bad length", 3: "unknown command", 4: "timeout (incomplete frame)"}
STATUS_OK, STATUS_CHECKSUM, STATUS_LENGTH, STATUS_COMMAND, STATUS_TIMEOUT = range(5)


class ProtocolError(HwgenError):
    pass


def value_bytes(store_bits: int) -> int:
    return (store_bits + 7) // 8


def checksum(body: bytes) -> int:
    return (-sum(body)) & 0xFF


def encode_values(values, store_bits: int) -> bytes:
    n = value_bytes(store_bits)
    lo, hi = -(1 << (store_bits - 1)), (1 << (store_bits - 1)) - 1
    out = bytearray()
    for v in values:
        v = int(v)
        if not lo <= v <= hi:
            raise ProtocolError(f"value {v} does not fit the accelerator's {store_bits}-bit inputs")
        out += (v & ((1 << (8 * n)) - 1)).to_bytes(n, "little")
    return bytes(out)


def encode_request(values, store_bits: int) -> bytes:
    payload = encode_values(values, store_bits)
    body = bytes([CMD_INFER, len(payload) & 0xFF, len(payload) >> 8]) + payload
    return bytes([SYNC_REQUEST]) + body + bytes([checksum(body)])


@dataclass(frozen=True)
class Response:
    status: int
    label: int | None = None
    logits: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def message(self) -> str:
        return STATUS.get(self.status, f"unknown status {self.status}")


def response_length(data: bytes, store_bits: int) -> int | None:
    """Bytes in the first complete response frame of `data`, or None while it is incomplete."""
    if len(data) < 3:
        return None
    if data[1] != STATUS_OK:
        return 3
    if len(data) < 4:
        return None
    return 5 + data[3] * value_bytes(store_bits) if len(data) >= 4 else None


def decode_response(data: bytes, store_bits: int) -> Response:
    if not data or data[0] != SYNC_RESPONSE:
        raise ProtocolError(f"response does not start with 0x{SYNC_RESPONSE:02x}: {data[:8].hex()}")
    size = response_length(data, store_bits)
    if size is None or len(data) < size:
        raise ProtocolError(f"incomplete response ({len(data)} bytes): {data.hex()}")
    frame = data[:size]
    if sum(frame[1:]) & 0xFF:
        raise ProtocolError(f"response checksum mismatch: {frame.hex()}")
    if frame[1] != STATUS_OK:
        return Response(frame[1])
    n, vb = frame[3], value_bytes(store_bits)
    logits = []
    for i in range(n):
        raw = int.from_bytes(frame[4 + i * vb:4 + (i + 1) * vb], "little") & ((1 << store_bits) - 1)
        logits.append(raw - (1 << store_bits) if raw >> (store_bits - 1) else raw)
    return Response(STATUS_OK, frame[2], tuple(logits))


def encode_response(status: int, label: int | None = None, logits=(), store_bits: int = 8) -> bytes:
    """The frame a board sends (used by the RTL testbench to state what it expects)."""
    body = bytes([status])
    if status == STATUS_OK:
        body += bytes([label, len(logits)]) + encode_values(logits, store_bits)
    return bytes([SYNC_RESPONSE]) + body + bytes([checksum(body)])
