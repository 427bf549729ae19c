"""One processing element of the output-stationary systolic array."""
from __future__ import annotations

from amaranth import Module, Mux, Shape, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .multiplier import LATENCY as MULTIPLIER_LATENCY
from .multiplier import PipelinedMultiplier, product_shape

PRODUCT_LATENCY = MULTIPLIER_LATENCY  # a PE accumulates its operand pair this many enabled cycles after it arrives


def result_latency(product_stages: int = PRODUCT_LATENCY) -> int:
    """Enabled cycles from a PE's `last` operands to its `result` (and `done`), for a multiplier of
    `product_stages` (HardwarePlan.product_stages): the product, the accumulator, the result register."""
    return product_stages + 2


RESULT_LATENCY = result_latency()  # at the default two product stages


class PE(wiring.Component):
    """Multiply a `w_shape` weight by an `a_shape` activation into an `acc_bits` accumulator.

    Operands arrive from the left (activation, with the first/last flags) and
    from above (weight); both leave registered to the right/below one cycle
    later, so the cell talks only to its neighbours. A bubble is a zero
    activation (the array's edge makes it so), so the accumulator adds every
    enabled cycle without a valid flag: a multiply-accumulate with one enable
    for all its registers, which is what yosys packs into an iCE40 SB_MAC16
    (operand, product and accumulator registers).

    The product comes from a `PipelinedMultiplier` (registered operands and
    product, the DSP's own registers on ECP5) PRODUCT_LATENCY cycles later,
    with the flags delayed to match (`product_stages`: one more, a fabric
    register behind the product, where the plan asks for it); the multiply
    and the accumulate never share a cycle. `first` restarts the accumulation; the cycle after `last`
    the accumulator is copied to `result`. Everything holds while `en` is
    low. Latency: `result` is valid, and `done` high, RESULT_LATENCY enabled
    cycles after `last` (`result_latency(product_stages)`).
    """

    def __init__(self, w_shape, a_shape, acc_bits: int, product_stages: int = PRODUCT_LATENCY,
                 multiplier_form: str | None = None):
        """`multiplier_form`: PipelinedMultiplier's `form` (None: the platform's DSP; "lut": logic cells)."""
        self.multiplier_form = multiplier_form
        self.w_shape, self.a_shape = Shape.cast(w_shape), Shape.cast(a_shape)
        if not self.w_shape.signed:
            raise ValueError(f"weights are signed (numerics: formats), got w_shape={self.w_shape!r}")
        self.acc_bits, self.product_stages = acc_bits, product_stages
        self.product_shape = product_shape(self.w_shape, self.a_shape)
        if acc_bits < 2:
            raise ValueError(f"acc_bits must be at least 2, got {acc_bits!r}")
        super().__init__({
            "en": In(1),
            "a_in": In(self.a_shape), "w_in": In(self.w_shape), "first_in": In(1), "last_in": In(1),
            "a_out": Out(self.a_shape), "w_out": Out(self.w_shape), "first_out": Out(1), "last_out": Out(1),
            "result": Out(signed(acc_bits)), "done": Out(1),
            "done_next": Out(1),  # what `done` holds after this clock edge: the array's stall works a cycle ahead
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.multiplier = mul = PipelinedMultiplier(self.w_shape, self.a_shape, self.multiplier_form,
                                                                  stages=self.product_stages)
        m.d.comb += [mul.en.eq(self.en), mul.w.eq(self.w_in), mul.a.eq(self.a_in)]
        # the flags travel beside the multiplier's pipeline: stage 0 is the operands' own output registers
        p_first, p_last = self.first_out, self.last_out
        for stage in range(1, self.product_stages):
            nf, nl = Signal(name=f"p{stage}_first"), Signal(name=f"p{stage}_last")
            with m.If(self.en):
                m.d.sync += [nf.eq(p_first), nl.eq(p_last)]
            p_first, p_last = nf, nl
        acc = Signal(signed(self.acc_bits), reset_less=True)
        summed_last = Signal()  # acc holds a finished sum
        m.d.comb += self.done_next.eq(Mux(self.en, summed_last, self.done))
        with m.If(self.en):
            m.d.sync += [
                self.a_out.eq(self.a_in), self.w_out.eq(self.w_in),
                self.first_out.eq(self.first_in), self.last_out.eq(self.last_in),
                acc.eq(Mux(p_first, 0, acc) + mul.product), summed_last.eq(p_last),
                self.done.eq(self.done_next),
            ]
            with m.If(summed_last):
                m.d.sync += self.result.eq(acc)
        return m
