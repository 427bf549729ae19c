"""One processing element of the output-stationary systolic array."""
from __future__ import annotations

from amaranth import Module, Mux, Shape, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


def product_shape(w_shape: Shape, a_shape: Shape) -> Shape:
    """Exact product width: |w * a| < 2**(w + a - 1) for a signed weight and either activation."""
    return signed(w_shape.width + a_shape.width)


PRODUCT_LATENCY = 1  # the registered product: a PE accumulates its operand pair one enabled cycle after it arrives


class PE(wiring.Component):
    """Multiply a `w_shape` weight by an `a_shape` activation into an `acc_bits` accumulator.

    Operands arrive from the left (activation, with the valid/first/last flags)
    and from above (weight); both leave registered to the right/below one cycle
    later, so the cell talks only to its neighbours. The product is registered
    (the DSP's pipeline register) and summed one cycle later, so the multiply
    and the accumulate never share a cycle. `first` restarts the accumulation,
    `last` copies the finished sum to `result`. Everything holds while `en` is
    low. Latency: `result` is valid, and `done` high, 1 + PRODUCT_LATENCY
    enabled cycles after `last`.
    """

    def __init__(self, w_shape, a_shape, acc_bits: int):
        self.w_shape, self.a_shape = Shape.cast(w_shape), Shape.cast(a_shape)
        if not self.w_shape.signed:
            raise ValueError(f"weights are signed (numerics: formats), got w_shape={self.w_shape!r}")
        self.acc_bits = acc_bits
        self.product_shape = product_shape(self.w_shape, self.a_shape)
        if acc_bits < 2:
            raise ValueError(f"acc_bits must be at least 2, got {acc_bits!r}")
        super().__init__({
            "en": In(1),
            "a_in": In(self.a_shape), "w_in": In(self.w_shape),
            "valid_in": In(1), "first_in": In(1), "last_in": In(1),
            "a_out": Out(self.a_shape), "w_out": Out(self.w_shape),
            "valid_out": Out(1), "first_out": Out(1), "last_out": Out(1),
            "result": Out(signed(acc_bits)), "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        acc = Signal(signed(self.acc_bits))
        product = Signal(self.product_shape)
        p_valid, p_first, p_last = Signal(), Signal(), Signal()  # the flags of the registered product
        total = Signal(signed(self.acc_bits))
        m.d.comb += total.eq(Mux(p_first, 0, acc) + product)
        with m.If(self.en):
            m.d.sync += [
                self.a_out.eq(self.a_in), self.w_out.eq(self.w_in),
                self.valid_out.eq(self.valid_in), self.first_out.eq(self.first_in), self.last_out.eq(self.last_in),
                product.eq(self.w_in * self.a_in),
                p_valid.eq(self.valid_in), p_first.eq(self.first_in), p_last.eq(self.last_in),
                self.done.eq(p_valid & p_last),
            ]
            with m.If(p_valid):
                m.d.sync += acc.eq(total)
                with m.If(p_last):
                    m.d.sync += self.result.eq(total)
        return m
