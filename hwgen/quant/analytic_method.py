"""`analytic`: per-tensor precisions from noise gains (Sakr & Shanbhag 2019, arXiv:1812.11732).

From Sakr et al. 2017 (ICML), used in Sec. 3 of the 2019 paper
(docs/precision.md, S1-S3):
  (S1) p_m <= sum_l Delta_l^2 E_l: the probability that the fixed-point
       decision differs from float is bounded by the quantization noise
       gains of the feed-forward tensors (activations and weights), with
       Delta_l = 2^-(B_l - 1) the step on the tensor's range normalised to [-1, 1].
  (S2) E_l = E[ sum_{i != yhat} sum_{x in l} |d(z_i - z_yhat)/dx|^2 / (24 |z_i - z_yhat|^2) ]
       (z: logits, yhat: the float decision), estimated over data with autograd.
  (S3) B_l = B_min + round(log2(sqrt(E_l / E_min))): the least sensitive
       tensor gets B_min. B_min is the smallest value that keeps (S1) under
       the target mismatch probability.
Ranges are the calibration maxima (activations) and max |w| (weights), so
E_l on the normalised tensor is r_l^2 times the gain in real units. An
unsigned tensor spends no bit on the sign, so its normalised step is 2^-B_l.
Formats then come from the ranges, as in `range`.
"""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import torch

from .. import ir, ops
from ..data import Dataset
from ..reference import float_forward
from .calibrate import TensorStats
from .config import LayerBits, QuantConfig
from .range_method import activation_range, activation_signs, build_plan, frac_for_range, weight_format

MIN_BITS, MAX_BITS = 2, 16
GAIN_SAMPLES = 64


def noise_gains(graph: ir.Graph, params: dict, x: np.ndarray) -> dict[tuple[str, str], float]:
    """(S2) for every quantized tensor: ("act", node) and ("weight", node), in real units."""
    P = {k: {n: torch.tensor(v, dtype=torch.float64, requires_grad=True) for n, v in p.items()} for k, p in params.items()}
    act_nodes = [graph.input.name] + [n.name for n in graph.nodes[1:] if not ops.rule(n).passthrough]
    weights = [n for n in P if "weight" in P[n]]
    gains: dict[tuple[str, str], float] = {("act", n): 0.0 for n in act_nodes}
    gains.update({("weight", n): 0.0 for n in weights})
    for sample in x:
        xi = torch.tensor(sample[None], dtype=torch.float64, requires_grad=True)
        outs = float_forward(graph, P, xi)
        outs[graph.input.name] = xi
        z = outs[graph.output.name][0]
        yhat = int(torch.argmax(z))
        targets = [outs[n] for n in act_nodes] + [P[n]["weight"] for n in weights]
        for i in range(len(z)):
            if i == yhat:
                continue
            d = z[i] - z[yhat]
            if float(d.detach().abs()) < 1e-12:
                continue
            grads = torch.autograd.grad(d, targets, retain_graph=True, allow_unused=True)
            scale = 1.0 / (24.0 * float(d.detach()) ** 2)
            for key, g in zip([("act", n) for n in act_nodes] + [("weight", n) for n in weights], grads):
                if g is not None:
                    gains[key] += float((g ** 2).sum()) * scale
    return {k: v / max(len(x), 1) for k, v in gains.items()}


def assign_bits(normalised_gains: dict, signed: dict, target: float) -> dict:
    """(S3) then (S1): the per-tensor bits for a target mismatch probability."""
    positive = {k: v for k, v in normalised_gains.items() if v > 0}
    e_min = min(positive.values()) if positive else 1.0
    offset = {k: (round(math.log2(math.sqrt(v / e_min))) if v > 0 else 0) for k, v in normalised_gains.items()}
    for b_min in range(MIN_BITS, MAX_BITS + 1):
        bits = {k: min(max(b_min + offset[k], MIN_BITS), MAX_BITS) for k in normalised_gains}
        bound = sum(2.0 ** (-2 * (bits[k] - int(signed[k]))) * v for k, v in normalised_gains.items())
        if bound <= target:
            return bits
    return {k: MAX_BITS for k in normalised_gains}


def analytic_plan(graph: ir.Graph, params: dict, stats: dict[str, TensorStats], cfg: QuantConfig, data: Dataset):
    rng = np.random.default_rng(0)
    idx = rng.choice(len(data.x), min(GAIN_SAMPLES, len(data.x)), replace=False)
    gains = noise_gains(graph, params, data.x[idx].astype(np.float64))
    signed = {}
    sign_of = activation_signs(graph, stats[graph.input.name].min < 0)
    normalised = {}
    for kind, name in gains:
        if kind == "act":
            r = activation_range(stats[name], cfg)
            signed[(kind, name)] = sign_of[name]
        else:
            r = float(np.abs(params[name]["weight"]).max())
            signed[(kind, name)] = True
        normalised[(kind, name)] = gains[(kind, name)] * r * r
    bits = assign_bits(normalised, signed, cfg.target_mismatch)
    overrides = {n.name: LayerBits(weight=bits.get(("weight", n.name)), act=bits.get(("act", n.name)))
                 for n in graph.nodes[1:] if ("act", n.name) in bits or ("weight", n.name) in bits}
    cfg = replace(cfg, act_bits=bits[("act", graph.input.name)], overrides=overrides)
    bound = sum(2.0 ** (-2 * (bits[k] - int(signed[k]))) * v for k, v in normalised.items())

    def act_frac(name: str, b: int, s: bool) -> int:
        return frac_for_range(activation_range(stats[name], cfg), b, s)

    def weight_fmt(_name, w, b, per_channel):
        return weight_format(w, b, per_channel)

    return build_plan(graph, params, cfg, input_signed=sign_of[graph.input.name], act_frac=act_frac,
                      weight_fmt=weight_fmt, method="analytic",
                      notes=(f"analytic: p_m bound {bound:.2e} <= target {cfg.target_mismatch} (Sakr & Shanbhag 2019)",))
