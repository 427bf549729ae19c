"""`sqnr`: SQNR-optimal power-of-2 steps and per-layer bit allocation.

Lin, Talathi & Annapureddy 2016, "Fixed Point Quantization of Deep
Convolutional Networks", arXiv:1511.06393. The labels (L1)-(L4) are those of
docs/precision.md, which follows the paper's Sections 3-4 (the PDF's own
equation numbers were not checked offline):

- (L1) The SQNR of a uniform quantizer grows by kappa = 6.02 dB per bit.
- (L2) Step: the optimal uniform step of a unit Gaussian for b bits (the
  paper's table, from Lloyd/Max), scaled by the tensor's RMS. hwgen's steps
  must be powers of 2, so the candidates are the powers of 2 from the
  no-clipping step down to the one just below the Gaussian optimum. The one
  with the lowest measured MSE on the tensor (weights) or on calibration
  data (activations) wins.
- (L3) Quantization noise adds at the output: 1/gamma_out = sum_i 1/gamma_i.
- (L4) Allocation: minimising the model size sum_i rho_i * beta_i at a fixed
  output SQNR gives beta_i - beta_j = (10 / kappa) * log10(rho_j / rho_i)
  (rho_i: parameters of layer i). With a total weight budget B this is
  beta_i = c - (10 / kappa) * log10(rho_i), where
  c = (B + (10 / kappa) * sum_i rho_i log10 rho_i) / sum_i rho_i.
  The betas are rounded to integers. Then a check lowers the most
  rounded-up layer until the budget holds.
"""
from __future__ import annotations

import math

import numpy as np

from .. import ir
from ..errors import PlanError
from ..fixed import Fixed, quantize_real
from .calibrate import TensorStats
from .config import LayerBits, QuantConfig
from .plan import QuantPlan
from .range_method import build_plan, frac_for_range

KAPPA_DB = 6.02
GAUSSIAN_OPTIMAL_STEP = {1: 1.596, 2: 0.996, 3: 0.586, 4: 0.335, 5: 0.188, 6: 0.104, 7: 0.057, 8: 0.031}
MIN_BITS, MAX_BITS = 2, 16


def gaussian_step(bits: int, sigma: float) -> float:
    """Optimal uniform step for N(0, sigma^2) at `bits` (Table 1); beyond 8 bits it halves per bit."""
    if bits in GAUSSIAN_OPTIMAL_STEP:
        return GAUSSIAN_OPTIMAL_STEP[bits] * sigma
    return GAUSSIAN_OPTIMAL_STEP[8] * sigma * 2.0 ** (8 - bits)


def quantization_mse(values: np.ndarray, fmt: Fixed) -> float:
    q, _ = quantize_real(values, fmt)
    return float(np.mean((q * fmt.step - values) ** 2))


def optimal_frac(values: np.ndarray, bits: int, signed: bool) -> int:
    """The power-of-2 step with the least MSE among the no-clip step and the Gaussian-optimal neighbourhood."""
    values = np.asarray(values, dtype=np.float64).ravel()
    peak = float(np.abs(values).max(initial=0.0))
    no_clip = frac_for_range(peak, bits, signed)
    rms = float(np.sqrt(np.mean(values ** 2))) if values.size else 0.0
    if rms == 0.0:
        return no_clip
    # an unsigned b-bit grid spans as many levels on one side as a signed (b+1)-bit grid
    gauss = math.ceil(-math.log2(gaussian_step(bits + (0 if signed else 1), rms)))
    candidates = range(no_clip, max(no_clip, gauss) + 2)
    return min(candidates, key=lambda f: (quantization_mse(values, Fixed(bits, f, signed)), -f))


def allocate_bits(rho: dict[str, int], budget_bits: float, *, allowed: tuple[int, ...] | None = None) -> dict[str, int]:
    """Lin et al.'s closed form under a weight-memory budget, rounded to integers and then checked.

    `allowed` restricts the widths (hardware-aware: widths that pack the weight memory without waste).
    """
    names = list(rho)
    r = np.array([rho[n] for n in names], dtype=np.float64)
    c = (budget_bits + (10 / KAPPA_DB) * float(np.sum(r * np.log10(r)))) / float(r.sum())
    cont = c - (10 / KAPPA_DB) * np.log10(r)
    choices = np.array(sorted(allowed or range(MIN_BITS, MAX_BITS + 1)))

    def snap(v):
        return int(choices[np.argmin(np.abs(np.log2(choices) - math.log2(max(v, 1e-9))))] if allowed
                   else min(max(round(v), MIN_BITS), MAX_BITS))

    beta = np.array([snap(v) for v in cont])
    while float(np.sum(r * beta)) > budget_bits:  # the check: drop the most rounded-up layer a step
        order = np.argsort(-(beta - cont))
        for i in order:
            lower = choices[choices < beta[i]]
            if lower.size:
                beta[i] = int(lower.max())
                break
        else:
            raise PlanError(f"a weight budget of {budget_bits:.0f} bits cannot hold these layers even at "
                            f"{int(choices.min())} bits each ({int(r.sum() * choices.min())} bits)")
    return {n: int(b) for n, b in zip(names, beta)}


def sqnr_plan(graph: ir.Graph, params: dict, stats: dict[str, TensorStats], cfg: QuantConfig) -> QuantPlan:
    notes = ["sqnr: least-MSE power-of-2 steps (Gaussian-optimal neighbourhood, Lin et al. 2016 Table 1)"]
    if cfg.weight_budget is not None:
        rho = {n: int(params[n]["weight"].size) for n in params
               if isinstance(graph.node(n), (ir.Conv2d, ir.Linear))}
        allowed = (2, 4, 8, 16) if cfg.cost == "hardware" else None
        bits = allocate_bits(rho, cfg.weight_budget, allowed=allowed)
        overrides = dict(cfg.overrides)
        for name, b in bits.items():
            old = overrides.get(name, LayerBits())
            overrides[name] = LayerBits(weight=b, act=old.act)
        from dataclasses import replace
        cfg = replace(cfg, overrides=overrides)
        notes.append(f"sqnr allocation ({cfg.cost} cost) under {cfg.weight_budget} weight bits: "
                     + ", ".join(f"{n}={b}" for n, b in bits.items()))

    def act_frac(name: str, bits: int, signed: bool) -> int:
        return optimal_frac(stats[name].samples, bits, signed)

    def weight_fmt(_name, w, bits, per_channel):
        tensor = Fixed(bits, optimal_frac(w, bits, True), True)
        if not per_channel:
            return tensor, None
        return tensor, tuple(optimal_frac(ch, bits, True) for ch in w.reshape(w.shape[0], -1))

    return build_plan(graph, params, cfg, input_signed=stats[graph.input.name].min < 0, act_frac=act_frac,
                      weight_fmt=weight_fmt, method="sqnr", notes=tuple(notes))
