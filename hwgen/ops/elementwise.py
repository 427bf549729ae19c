"""Element-wise ops on the element-wise unit: a standalone activation, the residual Add, and channel concat."""
from __future__ import annotations

import numpy as np
import torch

from .. import ir
from ..errors import HwgenError
from ..fixed import requantize, signed_bits_for
from .base import Golden, OpRule, add_frac, float_activation, fq_requant
from .registry import register


@register(ir.Relu)
class ActivationRule(OpRule):
    """An activation that could not be fused: requantized into its input's own format (numerics step 4)."""

    passthrough = True

    def float(self, node, ins, params):
        return float_activation(ins[0], node.activation)

    def fake_quant(self, node, ins, lp, fmts, params):
        return fq_requant(ins[0], lp.out, node.activation)

    def golden(self, node, ins, lp, fmts, qm):
        y, sats = requantize(ins[0], fmts[0].frac, lp.out, node.activation)
        return Golden(y, sats)

    def shifts(self, node, lp, fmts, channels):
        return np.array([fmts[0].frac - lp.out.frac])


@register(ir.Add)
class AddRule(OpRule):
    """Both operands shifted onto the finer grid, summed, requantized (numerics: other operators)."""

    def shape(self, node, ins):
        if ins[0] != ins[1]:
            raise HwgenError(f"add {node.name!r}: operand shapes {ins[0]} and {ins[1]} differ")
        return ins[0]

    def float(self, node, ins, params):
        return float_activation(ins[0] + ins[1], node.activation)

    def fake_quant(self, node, ins, lp, fmts, params):
        return fq_requant(ins[0] + ins[1], lp.out, node.activation)

    def golden(self, node, ins, lp, fmts, qm):
        f = add_frac(*fmts)
        acc = (ins[0] << (f - fmts[0].frac)) + (ins[1] << (f - fmts[1].frac))
        y, sats = requantize(acc, f, lp.out, node.activation)
        return Golden(y, sats, acc)

    def acc_bits(self, node, lp, fmts, w_q=None, b_q=None):
        f = add_frac(*fmts)
        return signed_bits_for((fmts[0].max_abs << (f - fmts[0].frac)) + (fmts[1].max_abs << (f - fmts[1].frac)))

    def shifts(self, node, lp, fmts, channels):
        return np.array([add_frac(*fmts) - lp.out.frac])


@register(ir.Concat)
class ConcatRule(OpRule):
    """torch.cat on channels: each input requantized to the output format, written after the one before."""

    def shape(self, node, ins):
        if any(x[1:] != ins[0][1:] for x in ins):
            raise HwgenError(f"concat {node.name!r}: inputs {ins} differ beyond the channels")
        return (sum(x[0] for x in ins), *ins[0][1:])

    def float(self, node, ins, params):
        return float_activation(torch.cat(ins, 1), node.activation)

    def fake_quant(self, node, ins, lp, fmts, params):
        return torch.cat([fq_requant(x, lp.out, node.activation) for x in ins], 1)

    def golden(self, node, ins, lp, fmts, qm):
        parts = [requantize(x, f.frac, lp.out, node.activation) for x, f in zip(ins, fmts)]
        return Golden(np.concatenate([y for y, _ in parts], axis=1), sum(s for _, s in parts))

    def acc_bits(self, node, lp, fmts, w_q=None, b_q=None):
        return signed_bits_for(max(f.max_abs for f in fmts))

    def shifts(self, node, lp, fmts, channels):
        return np.array([f.frac - lp.out.frac for f in fmts])
