"""The float torch executor of the graph IR: calibration and float accuracy.

It sits below quantization (which calibrates with it); the fake-quant executor
that needs a plan lives in hwgen.fake_quant.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from . import ir


def apply_activation(y: torch.Tensor, activation: str, six: float = 6.0) -> torch.Tensor:
    if activation == "relu":
        return torch.relu(y)
    if activation == "relu6":
        return torch.clamp(y, 0.0, six)
    return y


def float_forward(graph: ir.Graph, params: dict, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The imported (BN-folded) float network, every node's output kept."""
    dtype = x.dtype
    t = {k: {n: torch.as_tensor(v, dtype=dtype) for n, v in p.items()} for k, p in params.items()}
    outs = {graph.input.name: x}
    for node in graph.nodes[1:]:
        a = [outs[i] for i in node.inputs]
        if isinstance(node, ir.Conv2d):
            y = F.conv2d(a[0], t[node.name]["weight"], t[node.name]["bias"], node.stride, node.padding, 1, node.groups)
            y = apply_activation(y, node.activation)
        elif isinstance(node, ir.Linear):
            y = apply_activation(F.linear(a[0], t[node.name]["weight"], t[node.name]["bias"]), node.activation)
        elif isinstance(node, ir.Relu):
            y = apply_activation(a[0], node.activation)
        elif isinstance(node, ir.MaxPool2d):
            y = F.max_pool2d(a[0], node.kernel, node.stride, node.padding)
        elif isinstance(node, ir.AvgPool2d):
            y = apply_activation(F.avg_pool2d(a[0], node.kernel, node.stride, node.padding, count_include_pad=True), node.activation)
        elif isinstance(node, ir.Flatten):
            y = a[0].flatten(1)
        elif isinstance(node, ir.Add):
            y = apply_activation(a[0] + a[1], node.activation)
        else:
            raise NotImplementedError(node.op)
        outs[node.name] = y
    return outs
