"""One processing element of the output-stationary systolic array."""
from __future__ import annotations

from amaranth import Module, Mux, Shape, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out


def product_shape(w_shape: Shape, a_shape: Shape) -> Shape:
    """Exact product width: |w * a| < 2**(w + a - 1) for a signed weight and either activation."""
    return signed(w_shape.width + a_shape.width)


class PE(wiring.Component):
    """Multiply a `w_shape` weight by an `a_shape` activation into an `acc_bits` accumulator.

    Operands arrive from the left (activation, with the valid/first/last flags)
    and from above (weight); both leave registered to the right/below one cycle
    later, so the cell talks only to its neighbours. `first` restarts the
    accumulation, `last` copies the finished sum to `result`. Everything holds
    while `en` is low. Latency: `result` is valid one cycle after `last`.
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
            "result": Out(signed(acc_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        acc = Signal(signed(self.acc_bits))
        product = Signal(self.product_shape)
        total = Signal(signed(self.acc_bits))
        m.d.comb += [
            product.eq(self.w_in * self.a_in),
            total.eq(Mux(self.first_in, 0, acc) + product),
        ]
        with m.If(self.en):
            m.d.sync += [
                self.a_out.eq(self.a_in), self.w_out.eq(self.w_in),
                self.valid_out.eq(self.valid_in), self.first_out.eq(self.first_in), self.last_out.eq(self.last_in),
            ]
            with m.If(self.valid_in):
                m.d.sync += acc.eq(total)
                with m.If(self.last_in):
                    m.d.sync += self.result.eq(total)
        return m
