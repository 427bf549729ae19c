"""The float torch executor of the graph IR: calibration and float accuracy.

It sits below quantization (which calibrates with it); the fake-quant executor
that needs a plan lives in hwgen.fake_quant.
"""
from __future__ import annotations

import torch

from . import ir, ops


def float_forward(graph: ir.Graph, params: dict, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The imported (BN-folded) float network, every node's output kept."""
    dtype = x.dtype
    t = {k: {n: torch.as_tensor(v, dtype=dtype) for n, v in p.items()} for k, p in params.items()}
    outs = {graph.input.name: x}
    for node in graph.nodes[1:]:
        outs[node.name] = ops.rule(node).float(node, [outs[i] for i in node.inputs], t.get(node.name))
    return outs
