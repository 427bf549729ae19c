"""Ops that only move values: Flatten (an alias of its input) and nearest Upsample (the element-wise unit's
repeating read walk)."""
from __future__ import annotations

import numpy as np
import torch.nn.functional as F

from .. import ir
from .base import Golden, OpRule
from .registry import register


@register(ir.Flatten)
class FlattenRule(OpRule):
    unit = "alias"
    passthrough = True

    def shape(self, node, ins):
        return (int(np.prod(ins[0])),)

    def float(self, node, ins, params):
        return ins[0].flatten(1)

    def fake_quant(self, node, ins, lp, fmts, params):
        return self.float(node, ins, params)

    def golden(self, node, ins, lp, fmts, qm):
        return Golden(ins[0].reshape(len(ins[0]), -1))


@register(ir.Upsample)
class UpsampleRule(OpRule):
    passthrough = True

    def shape(self, node, ins):
        c, h, w = ins[0]
        return (c, h * node.scale, w * node.scale)

    def float(self, node, ins, params):
        return F.interpolate(ins[0], scale_factor=node.scale, mode="nearest")

    def fake_quant(self, node, ins, lp, fmts, params):
        return self.float(node, ins, params)

    def golden(self, node, ins, lp, fmts, qm):
        return Golden(np.repeat(np.repeat(ins[0], node.scale, axis=2), node.scale, axis=3))


@register(ir.Input)
class InputRule(OpRule):
    """The graph input: quantized by the host into the plan's input format, loaded by the input stream."""

    unit = "input"

    def shape(self, node, ins):
        return node.shape
