"""The rule interface and the numerics helpers rules share."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from .. import ir
from ..fixed import Activation, Fixed

UNITS = ("input", "array", "max", "eltwise", "alias")  # the hardware unit a rule's op lowers to


@dataclass
class Golden:
    """One node's integer result: the output, how many values saturated, the accumulator (for its width check)."""
    y: np.ndarray
    saturations: int = 0
    acc: np.ndarray | None = None


class OpRule:
    """What one IR op means to every stage. `lp` is the node's LayerPlan, `fmts` its inputs' formats."""

    unit: ClassVar[str] = "eltwise"
    passthrough: ClassVar[bool] = False  # no arithmetic: the output keeps the input's format and integers' meaning

    def shape(self, node: ir.Node, ins: list[tuple[int, ...]]) -> tuple[int, ...]:
        """The output shape (per sample) from the inputs' shapes; elementwise ops keep their input's."""
        return ins[0]

    def out_signed(self, node: ir.Node, in_signed: list[bool]) -> bool:
        """Whether the output format needs a sign, given the inputs' (plans pick unsigned where they can)."""
        if Activation.parse(getattr(node, "activation", "none")).nonnegative:
            return False
        return any(in_signed)

    def float(self, node: ir.Node, ins: list[torch.Tensor], params: dict[str, Any] | None) -> torch.Tensor:
        raise NotImplementedError

    def fake_quant(self, node: ir.Node, ins: list[torch.Tensor], lp, fmts: list[Fixed], params) -> torch.Tensor:
        """Float64 values on the plan's grids, computed from real values (independent of `golden`)."""
        raise NotImplementedError

    def golden(self, node: ir.Node, ins: list[np.ndarray], lp, fmts: list[Fixed], qm) -> Golden:
        raise NotImplementedError

    def acc_bits(self, node: ir.Node, lp, fmts: list[Fixed], w_q=None, b_q=None) -> int:
        """The narrowest accumulator no input in the formats' ranges can overflow; 0: the op has none."""
        return 0

    def shifts(self, node: ir.Node, lp, fmts: list[Fixed], channels: int) -> np.ndarray | None:
        """Requantization shifts (accumulator frac - out frac) the op needs; None: it does not requantize."""
        return None


def acc_frac(lp, a: Fixed, channels: int) -> np.ndarray:
    """Numerics step 1: the accumulator has w.frac + a.frac fractional bits (per channel)."""
    return lp.weight_fracs(channels) + a.frac


def pool_acc_frac(node: ir.AvgPool2d, lp, a: Fixed) -> int:
    """Average = window sum * 2**-log2(n) (power-of-2 window) or * reciprocal (numerics: other operators)."""
    if lp.reciprocal is None:
        return a.frac + (node.window.bit_length() - 1)
    return a.frac + lp.reciprocal.frac


def add_frac(a: Fixed, b: Fixed) -> int:
    return max(a.frac, b.frac)


def float_activation(y: torch.Tensor, activation: str) -> torch.Tensor:
    act = Activation.parse(activation)
    if act.neg_shift:
        y = torch.where(y < 0, y * 2.0 ** -act.neg_shift, y)
    if act.lower is not None or act.upper is not None:
        y = torch.clamp(y, act.lower, act.upper)
    return y


def fq_requant(y: torch.Tensor, out: Fixed, activation: str) -> torch.Tensor:
    """Numerics steps 3-5 on real values: floor(y * 2**frac + 1/2) (leaky: negatives scaled first), clamp, saturate."""
    act = Activation.parse(activation)
    t = y * 2.0 ** out.frac
    if act.neg_shift:
        t = torch.where(t < 0, t * 2.0 ** -act.neg_shift, t)
    t = torch.floor(t + 0.5)
    lo, hi = act.bounds(out)
    t = torch.clamp(t, lo, hi) if lo is not None or hi is not None else t
    return torch.clamp(t, out.min, out.max) / 2.0 ** out.frac


def fq_quantize(x: torch.Tensor, fmt: Fixed, frac=None) -> torch.Tensor:
    """Real -> nearest grid point (half to even), saturated: numerics 'quantizing a real tensor'."""
    scale = torch.pow(2.0, torch.as_tensor(fmt.frac if frac is None else frac, dtype=torch.float64))
    return torch.clamp(torch.round(x * scale), fmt.min, fmt.max) / scale
