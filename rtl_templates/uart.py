"""8N1 UART receiver and transmitter with byte streams; `divisor` = clock cycles per bit."""
from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from hwgen.errors import HwgenError
from hwgen.protocol import BAUD_TOLERANCE

MIN_DIVISOR = 4
STANDARD_BAUDS = (3_000_000, 2_000_000, 1_500_000, 1_000_000, 921_600, 500_000, 460_800, 230_400, 115_200)


def _makes(clk_hz: float, baud: int) -> bool:
    divisor = round(clk_hz / baud)
    return divisor >= MIN_DIVISOR and abs(clk_hz / divisor - baud) <= BAUD_TOLERANCE * baud


def best_baud(clk_hz: float) -> int:
    """The fastest standard rate (3 Mbaud down) that `clk_hz` makes within BAUD_TOLERANCE."""
    for baud in STANDARD_BAUDS:
        if _makes(clk_hz, baud):
            return baud
    raise HwgenError(f"a {clk_hz / 1e6:g} MHz clock makes no standard UART rate within {BAUD_TOLERANCE:.0%}")


def uart_divisor(clk_hz: float, baud: int) -> int:
    """Clock cycles per bit for `baud`; a rate the clock cannot make within BAUD_TOLERANCE is refused, naming the
    fastest standard rate that it can make."""
    divisor = round(clk_hz / baud)
    if _makes(clk_hz, baud):
        return divisor
    ok = [b for b in STANDARD_BAUDS if _makes(clk_hz, b)]
    hint = f"use --baud {ok[0]}" if ok else "use a faster clock"
    raise HwgenError(f"a {clk_hz / 1e6:g} MHz clock cannot make {baud} baud within {BAUD_TOLERANCE:.0%} "
                     f"(divisor {divisor}, {clk_hz / max(divisor, 1):.0f} baud): {hint}")


class UARTRx(wiring.Component):
    """Samples each bit in its middle. A byte whose stop bit is low is dropped and pulses `frame_error`.

    `bytes` has no backpressure (a UART cannot wait): the consumer must take
    one byte per `10 * divisor` cycles. `registered`: `bytes.valid` and
    `frame_error` are registers, a cycle after the stop bit's sample, so the
    bit timer's compare does not reach the consumer's logic (the ULX3S's
    critical path at 8x16 once the accelerator's enables were registered:
    110.1 -> 114.9 MHz; on the iCE40 the same change cost both digits_cnn
    designs 4-14%, so the host link asks for it on ECP5 only).
    """

    def __init__(self, divisor: int, registered: bool = False):
        if divisor < MIN_DIVISOR:
            raise ValueError(f"UART divisor must be >= {MIN_DIVISOR} clock cycles per bit, got {divisor}")
        self.divisor, self.registered = divisor, registered
        super().__init__({"rx": In(1, init=1), "bytes": Out(stream.Signature(8, always_ready=True)),
                          "frame_error": Out(1)})

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(self.divisor * 3 // 2 + 1))
        bit = Signal(range(9))
        shift = Signal(8)
        strobe = m.d.sync if self.registered else m.d.comb
        if self.registered:
            m.d.sync += [self.bytes.valid.eq(0), self.frame_error.eq(0)]  # pulses of one cycle, set in STOP
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += timer.eq(self.divisor // 2)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(rx):  # glitch, not a start bit
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [timer.eq(self.divisor - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shift.eq((shift >> 1) | (rx << 7)), timer.eq(self.divisor - 1), bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    strobe += [self.bytes.valid.eq(rx), self.frame_error.eq(~rx)]
                    m.next = "IDLE"
        m.d.comb += self.bytes.payload.eq(shift)
        return m


class UARTTx(wiring.Component):
    """Start bit, 8 data bits LSB first, stop bit; takes the next byte only after the stop bit's full time.

    `registered`: a byte waits in a register of its own until the shifter is free, so `ready` is that
    register's emptiness and the sender's `valid` (a frame packer's state and compares) ends at it rather than
    at the shifter's timer and bit count (the OrangeCrab-25F's critical path, 5.4 ns); a take then follows the
    one before by two cycles or more.
    """

    def __init__(self, divisor: int, registered: bool = False):
        self.divisor, self.registered = divisor, registered
        super().__init__({"bytes": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        timer, timer_next = Signal(range(self.divisor)), Signal(range(self.divisor))
        bits = Signal(10)
        left, left_next = Signal(range(11)), Signal(range(11))
        # `idle` is a register, worked out from the next timer and bit count: the sender's byte logic (a frame
        # packer's counters) hangs off a flip-flop, not off two compares
        idle = Signal(init=1)
        m.d.comb += [timer_next.eq(timer), left_next.eq(left)]
        m.d.sync += [timer.eq(timer_next), left.eq(left_next), idle.eq((left_next == 0) & (timer_next == 0))]
        if self.registered:
            held, byte = Signal(), Signal(8)
            m.d.comb += self.bytes.ready.eq(~held)
            with m.If(self.bytes.valid & ~held):
                m.d.sync += [held.eq(1), byte.eq(self.bytes.payload)]
            start, payload = held & idle, byte
            with m.If(start):
                m.d.sync += held.eq(0)
        else:
            m.d.comb += self.bytes.ready.eq(idle)
            start, payload = self.bytes.valid & idle, self.bytes.payload
        with m.If(start):
            m.d.sync += bits.eq((1 << 9) | (payload << 1))
            m.d.comb += left_next.eq(10)
        with m.Elif(timer != 0):
            m.d.comb += timer_next.eq(timer - 1)
        with m.Elif(left != 0):
            m.d.sync += [self.tx.eq(bits[0]), bits.eq(bits >> 1)]
            m.d.comb += [timer_next.eq(self.divisor - 1), left_next.eq(left - 1)]
        return m
