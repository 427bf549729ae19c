"""Float64 fake-quant executor of the graph IR: real values on the plan's grids.

Written independently of the integer golden model (hwgen.golden) so that the
two can be compared integer for integer.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import ir
from .fixed import relu6_ceiling
from .quant.plan import QuantizedModel
from .reference import apply_activation


def _fq(x: torch.Tensor, fmt, frac=None) -> torch.Tensor:
    """Real -> nearest grid point (half to even), saturated: numerics 'quantizing a real tensor'."""
    scale = torch.pow(2.0, torch.as_tensor(fmt.frac if frac is None else frac, dtype=torch.float64))
    return torch.clamp(torch.round(x * scale), fmt.min, fmt.max) / scale


def _requant(y: torch.Tensor, out, activation: str) -> torch.Tensor:
    """Numerics steps 3-5 on real values: floor(y * 2**frac + 1/2), activation, saturate."""
    scale = 2.0 ** out.frac
    t = torch.floor(y * scale + 0.5)
    t = apply_activation(t, activation, float(relu6_ceiling(out)))
    return torch.clamp(t, out.min, out.max) / scale


def fake_quant_forward(qm: QuantizedModel, params: dict, x: np.ndarray) -> dict[str, torch.Tensor]:
    """Float64 fake-quant: parameters re-quantized here from the float ones, not taken from `qm`."""
    plan, graph = qm.plan, qm.graph
    outs = {graph.input.name: _fq(torch.as_tensor(x, dtype=torch.float64), plan.input)}
    for node in graph.nodes[1:]:
        lp = plan.layer(node.name)
        a = [outs[i] for i in node.inputs]
        if isinstance(node, (ir.Conv2d, ir.Linear)):
            w = torch.as_tensor(params[node.name]["weight"], dtype=torch.float64)
            b = torch.as_tensor(params[node.name]["bias"], dtype=torch.float64)
            ch = w.shape[0]
            wf = torch.as_tensor(lp.weight_fracs(ch), dtype=torch.float64).reshape((-1,) + (1,) * (w.ndim - 1))
            wq = _fq(w, lp.weight, wf)
            bq = _fq(b, lp.bias, torch.as_tensor(lp.bias_fracs(ch), dtype=torch.float64))
            if isinstance(node, ir.Conv2d):
                y = F.conv2d(a[0], wq, bq, node.stride, node.padding, 1, node.groups)
            else:
                y = F.linear(a[0], wq, bq)
            y = _requant(y, lp.out, node.activation)
        elif isinstance(node, ir.AvgPool2d):
            s = F.avg_pool2d(a[0], node.kernel, node.stride, node.padding, count_include_pad=True, divisor_override=1)
            if lp.reciprocal_value is not None:
                y = s * (lp.reciprocal_value * 2.0 ** -lp.reciprocal.frac)
            else:
                y = s / node.window
            y = _requant(y, lp.out, node.activation)
        elif isinstance(node, ir.Add):
            y = _requant(a[0] + a[1], lp.out, node.activation)
        elif isinstance(node, ir.MaxPool2d):
            y = F.max_pool2d(a[0], node.kernel, node.stride, node.padding)
        elif isinstance(node, ir.Relu):
            y = apply_activation(a[0], node.activation, relu6_ceiling(lp.out) * 2.0 ** -lp.out.frac)
            y = torch.clamp(y, lp.out.min * lp.out.step, lp.out.max * lp.out.step)
        elif isinstance(node, ir.Flatten):
            y = a[0].flatten(1)
        else:
            raise NotImplementedError(node.op)
        outs[node.name] = y
    return outs
