"""The UART host-link frame format, shared by the host (`hwgen run`), the RTL and its testbench.

Request  (host -> board): A5 | 01 | len_lo len_hi | payload[len] | chk
Load     (host -> board): A5 | 02 | len_lo len_hi | chunk[len] | chk
                          (only a design whose weights are in SPRAM: the weight image,
                          HardwarePlan.weight_image, in chunks as long as a request's payload, the
                          last zero-padded; sent after power-up, before the first request)
Response (board -> host): 5A | status | class_lo class_hi | n_lo n_hi | logits[ceil(n * out.bits / 8)] | chk
                          (status 0; `class` is the first maximum's index)
                          5A | status | chk   (status != 0; 5 answers a load chunk)

Values are packed at their own width: the inputs at the input format's bits,
the logits at the output format's, one after the other from bit 0 of the
first byte (little endian bit stream, two's complement for signed formats),
the last byte padded with zeros; the class and the count are 16 bits, so an
output of more than 255 values (an autoencoder's 640) has a frame too. `chk`
makes the sum of every byte after the sync byte equal 0 modulo 256. A frame with a wrong command, length or
checksum, or one that stops arriving for the timeout, is answered with an
error status, in order with the other responses. The board then ignores bytes
until the line has been idle for the timeout, so a broken frame cannot wedge
it or start a false frame.

The board holds two requests: a host may send the next request before the
response to the last one arrives (the board receives it while it computes),
but must have at most two requests without a response.
"""
from __future__ import annotations

from dataclasses import dataclass

from .errors import HwgenError
from .fixed import Fixed

# The boards' USB UARTs (iCEBreaker FT2232H, ULX3S FT231X, OrangeCrab's) carry 3 Mbaud; the RTL divides its
# clock to the nearest rate (board_top refuses a rate the clock cannot make within BAUD_TOLERANCE).
DEFAULT_BAUD = 3_000_000
BAUD_TOLERANCE = 0.03
SYNC_REQUEST = 0xA5
SYNC_RESPONSE = 0x5A
CMD_INFER = 0x01
CMD_LOAD = 0x02
STATUS = {0: "ok", 1: "bad checksum", 2: "bad length", 3: "unknown command", 4: "timeout (incomplete frame)",
          5: "weights chunk loaded"}
STATUS_OK, STATUS_CHECKSUM, STATUS_LENGTH, STATUS_COMMAND, STATUS_TIMEOUT, STATUS_LOADED = range(6)
MAX_VALUES = 0xFFFF  # the frames' 16-bit lengths and counts


class ProtocolError(HwgenError):
    pass


def checksum(body: bytes) -> int:
    return (-sum(body)) & 0xFF


def packed_bytes(count: int, bits: int) -> int:
    """Bytes of `count` values of `bits` each, packed."""
    return (count * bits + 7) // 8


def encode_values(values, fmt: Fixed) -> bytes:
    """Integers in `fmt` packed at fmt.bits each, from bit 0 of the first byte."""
    stream, pos = 0, 0
    for v in values:
        v = int(v)
        if not fmt.min <= v <= fmt.max:
            raise ProtocolError(f"value {v} does not fit the accelerator's {fmt} values")
        stream |= (v & ((1 << fmt.bits) - 1)) << pos
        pos += fmt.bits
    return stream.to_bytes(packed_bytes(len(values), fmt.bits), "little")


def decode_values(data: bytes, count: int, fmt: Fixed) -> list[int]:
    stream = int.from_bytes(data, "little")
    out = []
    for i in range(count):
        raw = (stream >> (i * fmt.bits)) & ((1 << fmt.bits) - 1)
        out.append(raw - (1 << fmt.bits) if fmt.signed and raw >> (fmt.bits - 1) else raw)
    return out


def encode_request(values, fmt: Fixed) -> bytes:
    return _frame(CMD_INFER, encode_values(list(values), fmt))


def _frame(command: int, payload: bytes) -> bytes:
    body = bytes([command, len(payload) & 0xFF, len(payload) >> 8]) + payload
    return bytes([SYNC_REQUEST]) + body + bytes([checksum(body)])


def encode_load(image: bytes, chunk: int) -> list[bytes]:
    """Load frames carrying a weight image in chunks of `chunk` bytes (a request's payload length), the last
    zero-padded: the board drops what lies past the image."""
    if chunk < 1:
        raise ProtocolError("a load chunk needs at least one byte")
    return [_frame(CMD_LOAD, image[i:i + chunk].ljust(chunk, b"\0")) for i in range(0, len(image), chunk)]


@dataclass(frozen=True)
class Response:
    status: int
    label: int | None = None
    logits: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == STATUS_OK

    @property
    def loaded(self) -> bool:
        return self.status == STATUS_LOADED

    @property
    def message(self) -> str:
        return STATUS.get(self.status, f"unknown status {self.status}")


def response_length(data: bytes, fmt: Fixed) -> int | None:
    """Bytes in the first complete response frame of `data`, or None while it is incomplete."""
    if len(data) < 3:
        return None
    if data[1] != STATUS_OK:
        return 3
    if len(data) < 6:
        return None
    return 7 + packed_bytes(_u16(data, 4), fmt.bits)


def _u16(data: bytes, at: int) -> int:
    """The 16-bit field at byte `at`, low byte first."""
    return int.from_bytes(data[at:at + 2], "little")


def decode_response(data: bytes, fmt: Fixed) -> Response:
    """`fmt`: the output format (the logits' packing)."""
    if not data or data[0] != SYNC_RESPONSE:
        raise ProtocolError(f"response does not start with 0x{SYNC_RESPONSE:02x}: {data[:8].hex()}")
    size = response_length(data, fmt)
    if size is None or len(data) < size:
        raise ProtocolError(f"incomplete response ({len(data)} bytes): {data.hex()}")
    frame = data[:size]
    if sum(frame[1:]) & 0xFF:
        raise ProtocolError(f"response checksum mismatch: {frame.hex()}")
    if frame[1] != STATUS_OK:
        return Response(frame[1])
    return Response(STATUS_OK, _u16(frame, 2), tuple(decode_values(frame[6:-1], _u16(frame, 4), fmt)))


def encode_response(status: int, label: int | None = None, logits=(), fmt: Fixed = Fixed(8, 0)) -> bytes:
    """The frame a board sends (used by the RTL testbench to state what it expects)."""
    body = bytes([status])
    if status == STATUS_OK:
        body += label.to_bytes(2, "little") + len(logits).to_bytes(2, "little") + encode_values(list(logits), fmt)
    return bytes([SYNC_RESPONSE]) + body + bytes([checksum(body)])


def frame_bytes(n_in: int, in_fmt: Fixed, n_out: int, out_fmt: Fixed) -> tuple[int, int]:
    """(request, response) bytes of one inference: what the link carries each way."""
    return 5 + packed_bytes(n_in, in_fmt.bits), 7 + packed_bytes(n_out, out_fmt.bits)
