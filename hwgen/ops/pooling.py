"""MaxPool2d: the max unit walks the same windows as the array, padding with the input format's minimum."""
from __future__ import annotations

import torch.nn.functional as F

from .. import ir
from .array_ops import pooled_shape, windows
from .base import Golden, OpRule
from .registry import register


@register(ir.MaxPool2d)
class MaxPoolRule(OpRule):
    unit = "max"
    passthrough = True

    def shape(self, node, ins):
        return pooled_shape(node, *ins[0])

    def float(self, node, ins, params):
        return F.max_pool2d(ins[0], node.kernel, node.stride, node.padding)

    def fake_quant(self, node, ins, lp, fmts, params):
        return self.float(node, ins, params)

    def golden(self, node, ins, lp, fmts, qm):
        return Golden(windows(ins[0], node.kernel, node.stride, node.padding, fmts[0].min).max(axis=(-1, -2)))
