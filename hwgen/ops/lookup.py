"""Lookup-table activations (Sigmoid, Tanh, Hardsigmoid, Hardswish, SiLU): one table per layer, built from
the plan's input and output formats, read by the golden model and stored in the accelerator's table memory."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .. import ir
from ..fixed import Fixed, quantize_real
from .base import Golden, OpRule, fq_quantize
from .registry import register

INDEX_BITS = 8  # at most 2**INDEX_BITS entries per table: wider inputs drop their low bits first

FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "hardsigmoid": F.hardsigmoid,
    "hardswish": F.hardswish,
    "silu": F.silu,
}
NONNEGATIVE = ("sigmoid", "hardsigmoid")


def index_shift(fin: Fixed) -> int:
    """Low input bits the table ignores: a signed input stores bits, an unsigned one bits + 1 in the arena."""
    return max(0, fin.bits - INDEX_BITS)


def bucket_centres(codes: np.ndarray, fin: Fixed) -> np.ndarray:
    """The real value each table entry stands for: the mean of the input codes that share its index."""
    k = index_shift(fin)
    return ((codes << k) + ((1 << k) - 1) / 2) * fin.step


def lut_table(node: ir.Lut, fin: Fixed, out: Fixed) -> np.ndarray:
    """Entry i is f at the centre of bucket i, rounded half to even into `out` and saturated."""
    k = index_shift(fin)
    codes = np.arange(fin.min >> k, (fin.max >> k) + 1, dtype=np.int64)
    y = FUNCTIONS[node.function](torch.as_tensor(bucket_centres(codes, fin), dtype=torch.float64)).numpy()
    table, _ = quantize_real(y, out)
    return table


@register(ir.Lut)
class LutRule(OpRule):
    def out_signed(self, node, in_signed):
        return node.function not in NONNEGATIVE

    def float(self, node, ins, params):
        return FUNCTIONS[node.function](ins[0])

    def fake_quant(self, node, ins, lp, fmts, params):
        codes = torch.round(ins[0] * 2.0 ** fmts[0].frac).to(torch.int64) >> index_shift(fmts[0])
        return fq_quantize(FUNCTIONS[node.function](torch.as_tensor(bucket_centres(codes.numpy(), fmts[0]))), lp.out)

    def golden(self, node, ins, lp, fmts, qm):
        k = index_shift(fmts[0])
        return Golden(qm.tables[node.name][(ins[0] >> k) - (fmts[0].min >> k)])
