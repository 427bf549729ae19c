"""The PE's pipelined multiplier: registered operands, registered product, on the DSP's own registers where it has them.

yosys maps an inferred ECP5 multiply onto MULT18X18D with every internal
register bypassed, so the path from the operand flip-flops through the fabric
into the DSP and back out to the product flip-flop is one clock period (13 ns
on the ULX3S-85F). Instantiating MULT18X18D with its input and output
registers splits that path in two: fabric -> DSP input register, DSP input
register -> DSP output register. Other targets get the same two stages in
plain registers (yosys packs them into the iCE40's SB_MAC16 where it can).
`stages` 3 adds a register in the fabric after the product: the route from
the DSP block to the accumulator was 7.2 ns of the ULX3S-85F's critical path
at 8x16. The hardware plan asks for it on ECP5 only
(`HardwarePlan.product_stages`, `hwgen.fit.plan_for`): its flip-flops per PE
pushed digits_cnn's 2x4 design off the iCE40 UP5K.

A third form, "lut", multiplies in logic cells on any target (`lut_product`):
the PEs past the board's DSP blocks (`HardwarePlan.lut_pes`) use it.

The forms are cycle-identical, so the cycle model, the golden model and
the regressions hold for all; `hwgen sim --dsp ecp5` simulates the ECP5 form
with `sim/models/MULT18X18D.v`, our behavioural model of the subset used here.
"""
from __future__ import annotations

import operator

from amaranth import ClockSignal, Instance, Module, Mux, Shape, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .family import family_of

LATENCY = 2  # enabled cycles from the operands at the inputs to their product at `product` (`stages` 2)
ECP5_OPERAND_BITS = 18


def product_shape(w_shape: Shape, a_shape: Shape) -> Shape:
    """Exact product width: |w * a| < 2**(w + a - 1) for a signed weight and either activation."""
    return signed(w_shape.width + a_shape.width)


def fits_mult18x18d(w_shape: Shape, a_shape: Shape) -> bool:
    """Both operands fit an 18-bit signed DSP port (an unsigned one needs a spare sign bit)."""
    def bits(shape: Shape) -> int:
        return shape.width + (0 if shape.signed else 1)
    return bits(w_shape) <= ECP5_OPERAND_BITS and bits(a_shape) <= ECP5_OPERAND_BITS


def lut_product(w, a):
    """w * a as a sum of shifted partial products, one per weight bit, the sign bit's subtracted (a signed
    weight's top bit weighs -2**(n - 1)): adders, not a `$mul` cell, so yosys builds it from logic cells and carry
    chains instead of a DSP block. Why: a PE beyond the board's DSP blocks (HardwarePlan.lut_pes) costs LUTs in
    proportion to its operand widths, so narrow layers buy PEs that wide ones cannot (docs/accelerator.md)."""
    n = len(w)
    terms = [Mux(w[i], a, 0) << i for i in range(n - 1)] + [Mux(w[n - 1], -(a << (n - 1)), 0)]
    while len(terms) > 1:  # a balanced tree: ceil(log2(n)) adder levels between the registers
        terms = [sum(terms[i:i + 2]) for i in range(0, len(terms), 2)]
    return terms[0]


class PipelinedMultiplier(wiring.Component):
    """product = w * a, `stages` enabled cycles after w and a are presented (LATENCY, or one more with a fabric
    register behind the product); holds while `en` is low."""

    FORMS = ("generic", "ecp5", "lut")

    def __init__(self, w_shape, a_shape, form: str | None = None, stages: int = LATENCY):
        """`form`: None picks from the platform (ECP5 DSP where the operands fit); "generic" or "ecp5" force one,
        so a test can put them side by side; "lut" multiplies in logic cells on every target (`lut_product`)."""
        self.w_shape, self.a_shape = Shape.cast(w_shape), Shape.cast(a_shape)
        if form not in (None, *self.FORMS):
            raise ValueError(f"form must be one of {self.FORMS} or None, got {form!r}")
        if form == "ecp5" and not fits_mult18x18d(self.w_shape, self.a_shape):
            raise ValueError(f"{self.w_shape!r} x {self.a_shape!r} does not fit MULT18X18D's 18-bit signed ports")
        if stages not in (LATENCY, LATENCY + 1):
            raise ValueError(f"stages must be {LATENCY} or {LATENCY + 1}, got {stages!r}")
        self.form, self.stages = form, stages
        super().__init__({
            "en": In(1), "w": In(self.w_shape), "a": In(self.a_shape),
            "product": Out(product_shape(self.w_shape, self.a_shape)),
        })

    def elaborate(self, platform):
        form = self.form or ("ecp5" if family_of(platform) == "ecp5"
                             and fits_mult18x18d(self.w_shape, self.a_shape) else "generic")
        m = Module()
        product = Signal.like(self.product, name="product_reg", reset_less=True)  # after LATENCY stages
        if form == "ecp5":
            self._mult18x18d(m, product)
        else:  # operand and product registers in the fabric, the product from `*` or, in logic cells, lut_product
            self._registered(m, product, lut_product if form == "lut" else operator.mul)
        if self.stages == LATENCY:
            m.d.comb += self.product.eq(product)
        else:  # a fabric register behind the product, reset-less like the others
            behind = Signal.like(self.product, name="product_behind", reset_less=True)
            with m.If(self.en):
                m.d.sync += behind.eq(product)
            m.d.comb += self.product.eq(behind)
        return m

    def _registered(self, m: Module, product: Signal, multiply) -> None:
        # no reset: the PE's flags say which products count, and reset-less registers are what yosys packs into
        # the iCE40's SB_MAC16 (its input and output registers) instead of logic cells
        w_reg = Signal(self.w_shape, name="w_reg", reset_less=True)
        a_reg = Signal(self.a_shape, name="a_reg", reset_less=True)
        with m.If(self.en):
            m.d.sync += [w_reg.eq(self.w), a_reg.eq(self.a), product.eq(multiply(w_reg, a_reg))]

    def _mult18x18d(self, m: Module, product: Signal) -> None:
        """MULT18X18D with its A/B input registers and its output register on CLK0/CE0; both ports signed."""
        a18, b18, p36 = Signal(signed(ECP5_OPERAND_BITS)), Signal(signed(ECP5_OPERAND_BITS)), Signal(36)
        m.d.comb += [a18.eq(self.a), b18.eq(self.w), product.eq(p36[:len(product)])]
        ports = {f"i_A{i}": a18[i] for i in range(ECP5_OPERAND_BITS)}
        ports |= {f"i_B{i}": b18[i] for i in range(ECP5_OPERAND_BITS)}
        ports |= {f"i_C{i}": 0 for i in range(ECP5_OPERAND_BITS)}
        ports |= {f"o_P{i}": p36[i] for i in range(36)}
        ports |= {"i_SIGNEDA": 1, "i_SIGNEDB": 1, "i_SOURCEA": 0, "i_SOURCEB": 0,
                  "i_CLK0": ClockSignal("sync"), "i_CE0": self.en, "i_RST0": 0}
        ports |= {f"i_{name}{n}": 0 for name in ("CLK", "CE", "RST") for n in (1, 2, 3)}
        registers = {"p_REG_INPUTA_CLK": "CLK0", "p_REG_INPUTB_CLK": "CLK0", "p_REG_OUTPUT_CLK": "CLK0",
                     "p_REG_PIPELINE_CLK": "NONE", "p_REG_INPUTC_CLK": "NONE"}
        m.submodules.mult18x18d = Instance("MULT18X18D", **registers, **ports)
