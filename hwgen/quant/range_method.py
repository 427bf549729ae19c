"""`range`: dynamic-range formats, ADaPTION-style (Milde et al. 2017, arXiv:1711.04713).

Integer bits m = floor(log2 max|x|) + 1 (so max|x| < 2**m), fraction bits
n = bits - m - sign: a Qm.n format per tensor, measured over calibration data
(activations) or the tensor itself (weights). Percentile clipping replaces max
as the robustness variant.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .. import ir, ops
from ..fixed import Fixed
from .calibrate import TensorStats
from .config import QuantConfig
from .plan import LayerPlan, QuantPlan


def frac_for_range(max_abs: float, bits: int, signed: bool) -> int:
    """Largest frac such that max_abs fits below 2**(bits - sign - frac)."""
    if not max_abs > 0 or not math.isfinite(max_abs):
        return bits - int(signed)
    int_bits = math.floor(math.log2(max_abs)) + 1
    return bits - int_bits - int(signed)


def weight_format(w: np.ndarray, bits: int, per_channel: bool) -> tuple[Fixed, tuple[int, ...] | None]:
    peak = np.abs(w).reshape(w.shape[0], -1).max(axis=1)
    tensor = Fixed(bits, frac_for_range(float(peak.max()), bits, True), True)
    if not per_channel:
        return tensor, None
    return tensor, tuple(frac_for_range(float(p), bits, True) for p in peak)


def bias_format(b: np.ndarray, bits: int, acc_fracs: np.ndarray, per_channel: bool) -> tuple[Fixed, tuple[int, ...] | None]:
    """Bias frac from its range, capped at the accumulator's frac so the shift is exact (numerics step 2)."""
    if per_channel:
        fr = tuple(int(min(frac_for_range(abs(float(v)), bits, True), af)) for v, af in zip(b, acc_fracs))
        return Fixed(bits, min(fr), True), fr
    return Fixed(bits, int(min(frac_for_range(float(np.abs(b).max(initial=0.0)), bits, True), acc_fracs.min())), True), None


def activation_signed(node: ir.Node, in_signed: list[bool]) -> bool:
    if ops.rule(node).passthrough:
        return in_signed[0]
    return ops.rule(node).out_signed(node, in_signed)


def activation_signs(graph: ir.Graph, input_signed: bool) -> dict[str, bool]:
    """`activation_signed` for every node, from the graph input forward."""
    signs = {graph.input.name: input_signed}
    for node in graph.nodes[1:]:
        signs[node.name] = activation_signed(node, [signs[i] for i in node.inputs])
    return signs


def activation_range(stats: TensorStats, cfg: QuantConfig) -> float:
    return stats.abs_percentile(cfg.percentile) if cfg.percentile else stats.max_abs


def reciprocal_for(window: int, bits: int = 16) -> tuple[Fixed, int]:
    """Unsigned fixed-point 1/window with `bits` significant bits (value in [2**(bits-1), 2**bits))."""
    frac = bits - 1 + (window - 1).bit_length()
    return Fixed(bits, frac, False), round(2 ** frac / window)


ActFrac = Callable[[str, int, bool], int]                                   # (node, bits, signed) -> frac
WeightFormat = Callable[[str, np.ndarray, int, bool], tuple[Fixed, tuple[int, ...] | None]]


def build_plan(graph: ir.Graph, params: dict, cfg: QuantConfig, *, input_signed: bool, act_frac: ActFrac,
               weight_fmt: WeightFormat, method: str, notes: tuple[str, ...]) -> QuantPlan:
    """The plan skeleton every method shares; methods differ in how they pick fracs (and bits, via cfg)."""
    inp = Fixed(cfg.act_bits, act_frac(graph.input.name, cfg.act_bits, input_signed), input_signed)
    fmts: dict[str, Fixed] = {graph.input.name: inp}
    layers = []
    for node in graph.nodes[1:]:
        ins = [fmts[i] for i in node.inputs]
        if ops.rule(node).passthrough:
            out = ins[0]
            lp = LayerPlan(node.name, node.op, out)
        else:
            abits = cfg.abits(node.name)
            signed = activation_signed(node, [f.signed for f in ins])
            out = Fixed(abits, act_frac(node.name, abits, signed), signed)
            lp = LayerPlan(node.name, node.op, out)
            if isinstance(node, (ir.Conv2d, ir.Linear)):
                p = params[node.name]
                wf, wch = weight_fmt(node.name, p["weight"], cfg.wbits(node.name), cfg.per_channel)
                acc_fracs = (np.array(wch) if wch else np.full(p["weight"].shape[0], wf.frac)) + ins[0].frac
                bf, bch = bias_format(p["bias"], cfg.bbits(node.name), acc_fracs, cfg.per_channel)
                lp = LayerPlan(node.name, node.op, out, weight=wf, weight_channel_frac=wch, bias=bf, bias_channel_frac=bch)
            elif isinstance(node, ir.AvgPool2d) and node.window & (node.window - 1):
                # the pool's weight width (the plan's, or its override) holds the reciprocal: unsigned, so one bit
                # below the multiplier's signed weight operand, which it then never widens
                rf, rv = reciprocal_for(node.window, cfg.wbits(node.name) - 1)
                lp = LayerPlan(node.name, node.op, out, reciprocal=rf, reciprocal_value=rv)
        fmts[node.name] = out
        layers.append(lp)
    return QuantPlan(input=inp, layers=tuple(layers), method=method, notes=notes)


def range_plan(graph: ir.Graph, params: dict, stats: dict[str, TensorStats], cfg: QuantConfig) -> QuantPlan:
    def act_frac(name: str, bits: int, signed: bool) -> int:
        return frac_for_range(activation_range(stats[name], cfg), bits, signed)

    def weight_fmt(_name, w, bits, per_channel):
        return weight_format(w, bits, per_channel)

    return build_plan(graph, params, cfg, input_signed=stats[graph.input.name].min < 0, act_frac=act_frac,
                      weight_fmt=weight_fmt, method="range",
                      notes=(f"range: {'percentile ' + str(cfg.percentile) if cfg.percentile else 'max-abs'} ranges, "
                             f"{'per-channel' if cfg.per_channel else 'per-tensor'} weights",))
