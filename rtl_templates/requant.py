"""Requantizer: numerics steps 2-5 in hardware (bias add, round-half-up shift, activation clamp, saturate)."""
from __future__ import annotations

from dataclasses import dataclass

from amaranth import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwgen.fixed import LEAKY_MAX_SHIFT, shift_bits


@dataclass(frozen=True)
class ActivationSupport:
    """The activation hardware a plan needs, so a plan without LeakyReLU or Hardtanh pays nothing for them.

    `lower`: "any" compares with `clamp_lo`; "zero" only implements ReLU's
    bound (every layer's `clamp_lo` is 0 or none); "none" has no lower clamp.
    """

    leaky: bool = True
    lower: str = "any"
    upper: bool = True


PIPELINED_LATENCY = 5  # registered stages: the bias add (beside it the shift amounts), the rounding add, the
# shift, the compares, the choice


class Requantizer(wiring.Component):
    """y = saturate(clamp(round_half_up_shift(acc + bias, shift))), combinational or in registered stages.

    `bias` is already on the accumulator's grid (b_q << (acc_frac - b.frac)),
    `shift` = acc_frac - out.frac per output channel: > 0 rounds half up and
    shifts right, <= 0 shifts left; a negative sum shifts `neg_shift` more
    (LeakyReLU with slope 2**-neg_shift). `clamp_lo`/`clamp_hi` are the
    activation's bounds (ReLU: 0; ReLU6: 0 and six; Hardtanh: any), each kept
    within one step outside the format (lo - 1 or hi + 1 where there is no
    bound: values beyond the format saturate either way, so y and the flag
    are unchanged). `lo`/`hi` are the output format's range; `saturated`
    flags a value clipped to them (not an activation's clamp).
    """

    def __init__(self, acc_bits: int, out_bits: int, max_right: int, max_left: int,
                 support: ActivationSupport = ActivationSupport(), pipelined: bool = False):
        """`pipelined`: PIPELINED_LATENCY registered stages, each loaded when `en` is high (`y` is the result for
        the inputs of that many enabled cycles before); otherwise combinational (latency 0). The activation and
        format inputs (`neg_shift`, `clamp_*`, `lo`, `hi`) are not pipelined: they must hold while values pass."""
        self.support, self.pipelined = support, pipelined
        self.latency = PIPELINED_LATENCY if pipelined else 0
        if max_right < 0 or max_left < 0:
            raise ValueError(f"shift limits must be >= 0, got max_right={max_right!r} max_left={max_left!r}")
        self.acc_bits, self.out_bits = acc_bits, out_bits
        self.max_right, self.max_left = max_right, max_left
        self.out_shape = signed(out_bits + 1)  # holds every signed or unsigned format up to out_bits
        super().__init__({
            "acc": In(signed(acc_bits)), "bias": In(signed(acc_bits)),
            "shift": In(signed(shift_bits(max_right, max_left))),
            "neg_shift": In(range(LEAKY_MAX_SHIFT + 1)),
            "clamp_lo": In(signed(out_bits + 2)), "clamp_hi": In(signed(out_bits + 2)),  # hi + 1 of an unsigned format
            "lo": In(self.out_shape), "hi": In(self.out_shape),
            "y": Out(self.out_shape), "saturated": Out(1),
            **({"en": In(1)} if pipelined else {}),
        })

    def _stage(self, m: Module, value):
        """`value` itself, or (pipelined) a register loaded from it when `en` is high."""
        if not self.pipelined:
            return value
        reg = Signal.like(value)
        with m.If(self.en):
            m.d.sync += reg.eq(value)
        return reg

    def _amounts(self, m: Module, shift_value, name: str) -> tuple[Signal, Signal]:
        """A shift's right and left amounts (at most one of them non-zero); max_right covers shift + neg_shift
        (the plan's shifts do)."""
        shift = Signal(signed(len(self.shift) + 1), name=f"shift_{name}")
        right = Signal(unsigned(max(self.max_right, 1).bit_length()), name=f"right_{name}")
        left = Signal(unsigned(max(self.max_left, 1).bit_length()), name=f"left_{name}")
        m.d.comb += [shift.eq(shift_value), right.eq(Mux(shift > 0, shift, 0)), left.eq(Mux(shift < 0, -shift, 0))]
        return right, left

    @staticmethod
    def _narrow_compares(m: Module, wide, bits: int):
        """`wide < bound` and `wide > bound` for bounds of at most `bits` signed bits, as a `bits`-wide compare
        beside a check that `wide` fits that width (its bits above are copies of the sign): the carry chain is
        the bound's width, not the accumulator's (the OrangeCrab's critical path, a 40-bit compare, 5.9 ns)."""
        if len(wide) <= bits:
            return (lambda bound: wide < bound), (lambda bound: wide > bound)
        fits, small = Signal(name="fits_bound"), Signal(signed(bits), name="narrow")
        top = wide[bits - 1:]
        m.d.comb += [fits.eq((top == 0) | (top == (1 << len(top)) - 1)), small.eq(wide[:bits].as_signed())]
        negative = wide[-1]
        return (lambda bound: Mux(fits, small < bound, negative)), (lambda bound: Mux(fits, small > bound, ~negative))

    def elaborate(self, platform):
        m = Module()
        # stage 1: the bias add, and beside it the shift's direction and amounts, worked out from the shift alone
        # (for a leaky activation, for either sign of the sum), so stage 2 holds a decode and an add, not a
        # compare, a multiplexer, the decode and the add in a row (the OrangeCrab's critical path, 5.1 ns)
        total_in = Signal(signed(self.acc_bits + 1))
        m.d.comb += total_in.eq(self.acc + self.bias)
        total = self._stage(m, total_in)
        non_negative = [self._stage(m, part) for part in self._amounts(m, self.shift, "pos")]
        if self.support.leaky:
            negative = [self._stage(m, part) for part in self._amounts(m, self.shift + self.neg_shift, "neg")]
            right, left = (Mux(total < 0, neg, pos) for neg, pos in zip(negative, non_negative))
        else:
            right, left = non_negative

        # stage 2: the rounding half added (half is 0 for a left shift)
        half = Signal(unsigned(self.max_right + 1))
        biased = Signal(signed(self.acc_bits + 2))
        m.d.comb += [half.eq((1 << right) >> 1), biased.eq(total + half)]
        biased, right, left = self._stage(m, biased), self._stage(m, right), self._stage(m, left)

        # stage 3: one barrel shift, right (rounded: half was added) or left (at most one of them is non-zero)
        widened_in = Signal(signed(self.acc_bits + 2 + self.max_left))
        m.d.comb += widened_in.eq((biased >> right) << left)
        widened = self._stage(m, widened_in)

        # stage 4: every compare, in parallel on `widened` (the activation's bounds, the format's range), and
        # the format's bits of `widened`; stage 5 chooses among them, so no stage holds a compare chain and a
        # multiplexer behind it (the OrangeCrab's critical path), and only the format's bits are registered
        fmt = self.out_shape.width
        less, more = self._narrow_compares(m, widened, len(self.clamp_lo))
        lower = {"any": less(self.clamp_lo), "zero": (self.clamp_lo == 0) & (widened < 0), "none": Const(0)}
        below_act, above_act = self._stage(m, lower[self.support.lower]), self._stage(m, more(self.clamp_hi))
        below_fmt, above_fmt = self._stage(m, less(self.lo)), self._stage(m, more(self.hi))
        kept = self._stage(m, widened[:fmt].as_signed())

        # stage 5: the value out of the activation's bounds, and whether it lies outside the format
        active, low, high = Signal(signed(fmt)), Signal(), Signal()

        def take(value, below, above):
            return [active.eq(value[:fmt].as_signed()), low.eq(below), high.eq(above)]

        m.d.comb += take(kept, below_fmt, above_fmt)
        with m.If(below_act):
            m.d.comb += take(self.clamp_lo, self.clamp_lo < self.lo, self.clamp_lo > self.hi)
        if self.support.upper:
            with m.Elif(above_act):
                m.d.comb += take(self.clamp_hi, self.clamp_hi < self.lo, self.clamp_hi > self.hi)
        active, low, high = self._stage(m, active), self._stage(m, low), self._stage(m, high)

        # then saturation to the format, flagged
        m.d.comb += self.saturated.eq(low | high)
        with m.If(low):
            m.d.comb += self.y.eq(self.lo)
        with m.Elif(high):
            m.d.comb += self.y.eq(self.hi)
        with m.Else():
            m.d.comb += self.y.eq(active)
        return m
