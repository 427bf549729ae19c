"""Requantizer: numerics steps 2-5 in hardware (bias add, round-half-up shift, ReLU/ReLU6, saturate)."""
from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwgen.fixed import shift_bits


class Requantizer(wiring.Component):
    """y = saturate(act(round_half_up_shift(acc + bias, shift))), combinational (latency 0).

    `bias` is already on the accumulator's grid (b_q << (acc_frac - b.frac)),
    `shift` = acc_frac - out.frac per output channel: > 0 rounds half up and
    shifts right, <= 0 shifts left. `lo`/`hi` are the output format's range,
    `six` the ReLU6 ceiling, given as min(six, hi + 1) so it fits the output
    width (values above `hi` saturate either way, so y and the flag are
    unchanged). `saturated` flags a clipped value (not a ReLU).
    """

    latency = 0

    def __init__(self, acc_bits: int, out_bits: int, max_right: int, max_left: int):
        if max_right < 0 or max_left < 0:
            raise ValueError(f"shift limits must be >= 0, got max_right={max_right!r} max_left={max_left!r}")
        self.acc_bits, self.out_bits = acc_bits, out_bits
        self.max_right, self.max_left = max_right, max_left
        self.out_shape = signed(out_bits + 1)  # holds every signed or unsigned format up to out_bits
        super().__init__({
            "acc": In(signed(acc_bits)), "bias": In(signed(acc_bits)),
            "shift": In(signed(shift_bits(max_right, max_left))),
            "relu": In(1), "relu6": In(1), "six": In(signed(out_bits + 2)),  # up to hi + 1 of an unsigned format
            "lo": In(self.out_shape), "hi": In(self.out_shape),
            "y": Out(self.out_shape), "saturated": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        total = Signal(signed(self.acc_bits + 1))
        right = Signal(unsigned(max(self.max_right, 1).bit_length()))
        left = Signal(unsigned(max(self.max_left, 1).bit_length()))
        m.d.comb += [
            total.eq(self.acc + self.bias),
            right.eq(Mux(self.shift > 0, self.shift, 0)),
            left.eq(Mux(self.shift < 0, -self.shift, 0)),
        ]
        half = Signal(unsigned(self.max_right + 1))
        m.d.comb += half.eq((1 << right) >> 1)
        rounded = Signal(signed(self.acc_bits + 2))
        m.d.comb += rounded.eq((total + half) >> right)
        widened = Signal(signed(self.acc_bits + 2 + self.max_left))
        m.d.comb += widened.eq(Mux(self.shift > 0, rounded, total << left))
        active = Signal.like(widened)
        m.d.comb += active.eq(widened)
        with m.If((self.relu | self.relu6) & (widened < 0)):
            m.d.comb += active.eq(0)
        with m.Elif(self.relu6 & (widened > self.six)):
            m.d.comb += active.eq(self.six)
        with m.If(active < self.lo):
            m.d.comb += [self.y.eq(self.lo), self.saturated.eq(1)]
        with m.Elif(active > self.hi):
            m.d.comb += [self.y.eq(self.hi), self.saturated.eq(1)]
        with m.Else():
            m.d.comb += self.y.eq(active)
        return m
