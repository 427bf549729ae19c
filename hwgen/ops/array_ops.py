"""Ops on the systolic array: Conv2d (any groups), Linear, and AvgPool2d (a depthwise sum times a reciprocal)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .. import ir
from ..fixed import requantize, signed_bits_for
from .base import Golden, OpRule, acc_frac, float_activation, fq_quantize, fq_requant, pool_acc_frac
from .registry import register


def windows(x: np.ndarray, kernel, stride, padding, pad_value: int) -> np.ndarray:
    """(N, C, H, W) -> (N, C, OH, OW, kh, kw) views over the padded input."""
    ph, pw = padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    win = np.lib.stride_tricks.sliding_window_view(x, kernel, axis=(2, 3))
    return win[:, :, :: stride[0], :: stride[1]]


def conv2d_acc(x: np.ndarray, w: np.ndarray, node: ir.Conv2d) -> np.ndarray:
    """Integer sum(w*a) over each output's fan-in, for any groups (depthwise included)."""
    win = windows(x, node.kernel, node.stride, node.padding, 0)  # (N, C, OH, OW, kh, kw)
    g = node.groups
    cin, cout = node.in_channels // g, node.out_channels // g
    outs = []
    for gi in range(g):
        xs = win[:, gi * cin:(gi + 1) * cin]  # (N, cin, OH, OW, kh, kw)
        ws = w[gi * cout:(gi + 1) * cout]     # (cout, cin, kh, kw)
        outs.append(np.einsum("nchwij,ocij->nohw", xs, ws, optimize=True))
    return np.concatenate(outs, axis=1)


class _Weighted(OpRule):
    """Conv2d and Linear: integer weights and biases, a per-channel accumulator grid (numerics steps 1-5)."""

    unit = "array"

    def out_signed(self, node, in_signed):
        return super().out_signed(node, [True])

    def _apply(self, node, x, w, b):
        raise NotImplementedError

    def float(self, node, ins, params):
        return float_activation(self._apply(node, ins[0], params["weight"], params["bias"]), node.activation)

    def fake_quant(self, node, ins, lp, fmts, params):
        w = torch.as_tensor(params["weight"], dtype=torch.float64)
        b = torch.as_tensor(params["bias"], dtype=torch.float64)
        ch = w.shape[0]
        wf = torch.as_tensor(lp.weight_fracs(ch), dtype=torch.float64).reshape((-1,) + (1,) * (w.ndim - 1))
        wq = fq_quantize(w, lp.weight, wf)
        bq = fq_quantize(b, lp.bias, torch.as_tensor(lp.bias_fracs(ch), dtype=torch.float64))
        return fq_requant(self._apply(node, ins[0], wq, bq), lp.out, node.activation)

    def golden(self, node, ins, lp, fmts, qm):
        w, b = qm.weights[node.name], qm.biases[node.name]
        ch = w.shape[0]
        af = acc_frac(lp, fmts[0], ch)
        bshape = (1, ch, 1, 1) if isinstance(node, ir.Conv2d) else (1, ch)
        acc = (conv2d_acc(ins[0], w, node) if isinstance(node, ir.Conv2d) else ins[0] @ w.T)
        acc = acc + (b << (af - lp.bias_fracs(ch))).reshape(bshape)
        y, sats = requantize(acc, af.reshape(bshape), lp.out, node.activation)
        return Golden(y, sats, acc)

    def acc_bits(self, node, lp, fmts, w_q=None, b_q=None):
        channels = w_q.shape[0]
        af = acc_frac(lp, fmts[0], channels)
        bound = np.abs(w_q).reshape(channels, -1).sum(axis=1) * fmts[0].max_abs + (np.abs(b_q) << (af - lp.bias_fracs(channels)))
        # the bound from the actual integer weights and biases is never wider than one from the formats
        return signed_bits_for(int(bound.max()))

    def shifts(self, node, lp, fmts, channels):
        return acc_frac(lp, fmts[0], channels) - lp.out.frac


def pooled_shape(node, c: int, h: int, w: int) -> tuple[int, int, int]:
    return (c, ir.conv_out_size(h, node.kernel[0], node.stride[0], node.padding[0]),
            ir.conv_out_size(w, node.kernel[1], node.stride[1], node.padding[1]))


@register(ir.Conv2d)
class Conv2dRule(_Weighted):
    def shape(self, node, ins):
        return pooled_shape(node, node.out_channels, *ins[0][1:])

    def _apply(self, node, x, w, b):
        return F.conv2d(x, w, b, node.stride, node.padding, 1, node.groups)


@register(ir.Linear)
class LinearRule(_Weighted):
    def shape(self, node, ins):
        return (node.out_features,)

    def _apply(self, node, x, w, b):
        return F.linear(x, w, b)


@register(ir.AvgPool2d)
class AvgPoolRule(OpRule):
    """Window sum on the array (every weight is the reciprocal), then requantized (numerics: other operators)."""

    unit = "array"

    def shape(self, node, ins):
        return pooled_shape(node, *ins[0])

    def float(self, node, ins, params):
        y = F.avg_pool2d(ins[0], node.kernel, node.stride, node.padding, count_include_pad=True)
        return float_activation(y, node.activation)

    def fake_quant(self, node, ins, lp, fmts, params):
        s = F.avg_pool2d(ins[0], node.kernel, node.stride, node.padding, count_include_pad=True, divisor_override=1)
        if lp.reciprocal_value is not None:
            y = s * (lp.reciprocal_value * 2.0 ** -lp.reciprocal.frac)
        else:
            y = s / node.window
        return fq_requant(y, lp.out, node.activation)

    def golden(self, node, ins, lp, fmts, qm):
        acc = windows(ins[0], node.kernel, node.stride, node.padding, 0).sum(axis=(-1, -2))
        if lp.reciprocal_value is not None:
            acc = acc * lp.reciprocal_value
        y, sats = requantize(acc, pool_acc_frac(node, lp, fmts[0]), lp.out, node.activation)
        return Golden(y, sats, acc)

    def acc_bits(self, node, lp, fmts, w_q=None, b_q=None):
        return signed_bits_for(node.window * fmts[0].max_abs * (lp.reciprocal_value or 1))

    def shifts(self, node, lp, fmts, channels):
        return np.array([pool_acc_frac(node, lp, fmts[0]) - lp.out.frac])


