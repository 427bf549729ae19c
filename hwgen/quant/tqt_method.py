"""`tqt`: trained power-of-2 quantization thresholds (Jain, Gural, Wu, Dick 2020, arXiv:1903.08066).

Quantizer, per tensor, with trainable log2 t (docs/precision.md, T1-T3):
  (T1) s = 2^ceil(log2 t) / 2^(b-1), n = -2^(b-1), p = 2^(b-1) - 1 (signed);
       s = 2^ceil(log2 t) / 2^b,     n = 0,        p = 2^b - 1     (unsigned);
       q(x) = clip(round(x / s), n, p) * s
  (T2) dq/dx = 1 if n <= round(x/s) <= p, else 0           (straight-through)
  (T3) dq/d(log2 t) = s ln2 (round(x/s) - x/s) inside, s ln2 n below, s ln2 p above
Thresholds start at the calibration maxima. The weights train with them
(Adam, as the paper recommends: its normalisation makes the log-threshold
step scale-free). The trained s = 2^-frac becomes the plan's format exactly:
frac = b - 1 - ceil(log2 t) (signed) or b - ceil(log2 t) (unsigned). The
golden model then runs those formats with the trained weights.
Training uses labels when the data has them, else it distils from the float
network's logits (with a 10x smaller weight learning rate, so the weights
stay near the float network they imitate).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .. import ir, ops
from ..data import Dataset
from ..fixed import Fixed
from .calibrate import TensorStats
from .config import QuantConfig
from .range_method import activation_signs, build_plan


class TQTQuantize(torch.autograd.Function):
    """q(x) of (T1) with the gradients (T2) and (T3)."""

    @staticmethod
    def forward(ctx, x, log2_t, bits: int, signed: bool):
        s = torch.pow(2.0, torch.ceil(log2_t)) / 2.0 ** (bits - 1 if signed else bits)
        n, p = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
        xs = x / s
        r = torch.round(xs)
        ctx.save_for_backward(xs, r, s)
        ctx.n, ctx.p = n, p
        return torch.clamp(r, n, p) * s

    @staticmethod
    def backward(ctx, grad):
        xs, r, s = ctx.saved_tensors
        n, p = ctx.n, ctx.p
        inside = (r >= n) & (r <= p)
        grad_x = grad * inside
        local = torch.where(inside, r - xs, torch.where(r < n, torch.full_like(xs, n), torch.full_like(xs, p)))
        grad_t = (grad * s * math.log(2.0) * local).sum().reshape(1)
        return grad_x, grad_t, None, None


def tqt_quantize(x: torch.Tensor, log2_t: torch.Tensor, bits: int, signed: bool) -> torch.Tensor:
    return TQTQuantize.apply(x, log2_t, bits, signed)


def frac_from_threshold(log2_t: float, bits: int, signed: bool) -> int:
    return bits - (1 if signed else 0) - math.ceil(log2_t)


class _QATGraph(torch.nn.Module):
    """The graph IR with TQT fake-quant on every weight and every requantized activation."""

    def __init__(self, graph: ir.Graph, params: dict, stats: dict[str, TensorStats], cfg: QuantConfig):
        super().__init__()
        self.graph, self.cfg = graph, cfg
        self.w = torch.nn.ParameterDict()
        self.b = torch.nn.ParameterDict()
        self.t_w = torch.nn.ParameterDict()
        self.t_a = torch.nn.ParameterDict()
        self.signed = activation_signs(graph, stats[graph.input.name].min < 0)
        self.key = {n.name: f"n{i}" for i, n in enumerate(graph.nodes)}  # ParameterDict keys must be identifiers
        for node in graph.nodes[1:]:
            if node.name in params and "weight" in params[node.name]:
                k = self.key[node.name]
                w = torch.as_tensor(params[node.name]["weight"], dtype=torch.float32)
                self.w[k] = torch.nn.Parameter(w.clone())
                self.b[k] = torch.nn.Parameter(torch.as_tensor(params[node.name]["bias"], dtype=torch.float32).clone())
                self.t_w[k] = torch.nn.Parameter(torch.tensor([math.log2(max(float(w.abs().max()), 1e-8))]))
        for node in graph.nodes:
            if not ops.rule(node).passthrough:
                self.t_a[self.key[node.name]] = torch.nn.Parameter(
                    torch.tensor([math.log2(max(stats[node.name].max_abs, 1e-8))]))

    def forward(self, x):
        g, cfg = self.graph, self.cfg
        outs = {g.input.name: tqt_quantize(x, self.t_a[self.key[g.input.name]], cfg.act_bits, self.signed[g.input.name])}
        for node in g.nodes[1:]:
            k = self.key[node.name]
            a = [outs[i] for i in node.inputs]
            params = None
            if k in self.w:
                params = {"weight": tqt_quantize(self.w[k], self.t_w[k], cfg.wbits(node.name), True), "bias": self.b[k]}
            y = ops.rule(node).float(node, a, params)
            if k in self.t_a:
                y = tqt_quantize(y, self.t_a[k], cfg.abits(node.name), self.signed[node.name])
            outs[node.name] = y
        return outs[g.output.name]


def tqt_plan(graph: ir.Graph, params: dict, stats: dict[str, TensorStats], cfg: QuantConfig, data: Dataset,
             *, progress: bool = False, seed: int = 0):
    """Fine-tune weights and log2 thresholds; return (plan, trained float parameters)."""
    from ..reference import float_forward

    torch.manual_seed(seed)
    model = _QATGraph(graph, params, stats, cfg)
    x = torch.as_tensor(data.x, dtype=torch.float32)
    if data.y is not None:
        target = torch.as_tensor(data.y)
        loss_fn = F.cross_entropy
    else:
        with torch.no_grad():
            target = float_forward(graph, params, x)[graph.output.name].float()
        loss_fn = F.mse_loss
    # Distilling from float logits (no labels), the weights move 10x slower: at 1e-3 they drift from the float
    # network (the larger synthetic CNN lost 17 dB of output SQNR at 8 bits; at 1e-4 it gains 1.3 dB over `range`).
    weight_lr = 1e-3 if data.y is not None else 1e-4
    opt = torch.optim.Adam([{"params": list(model.w.values()) + list(model.b.values()), "lr": weight_lr},
                            {"params": list(model.t_w.values()) + list(model.t_a.values()), "lr": 1e-2}])
    rng = np.random.default_rng(seed)
    batch = 64
    steps = cfg.tqt_epochs * math.ceil(len(x) / batch)
    for step in tqdm(range(steps), desc="tqt", unit="step", disable=not progress, leave=False):
        idx = torch.as_tensor(rng.choice(len(x), min(batch, len(x)), replace=False))
        opt.zero_grad()
        loss = loss_fn(model(x[idx]), target[idx])
        loss.backward()
        opt.step()

    trained = {name: dict(p) for name, p in params.items()}
    for name in trained:
        k = model.key[name]
        if k in model.w:
            trained[name] = {"weight": model.w[k].detach().double().numpy(), "bias": model.b[k].detach().double().numpy()}
    t_a = {name: float(model.t_a[model.key[name]].detach()) for name in model.key if model.key[name] in model.t_a}
    t_w = {name: float(model.t_w[model.key[name]].detach()) for name in model.key if model.key[name] in model.t_w}

    def act_frac(name: str, bits: int, signed: bool) -> int:
        return frac_from_threshold(t_a[name], bits, signed)

    def weight_fmt(name, _w, bits, _per_channel):
        return Fixed(bits, frac_from_threshold(t_w[name], bits, True), True), None

    plan = build_plan(graph, trained, cfg, input_signed=model.signed[graph.input.name], act_frac=act_frac,
                      weight_fmt=weight_fmt, method="tqt",
                      notes=(f"tqt: {cfg.tqt_epochs} epochs of QAT with trained power-of-2 thresholds "
                             f"({'labels' if data.y is not None else 'distilled from float logits'})",))
    return plan, trained
