"""Float64 fake-quant executor of the graph IR: real values on the plan's grids.

Written independently of the integer golden model (hwgen.golden) so that the
two can be compared integer for integer.
"""
from __future__ import annotations

import numpy as np
import torch

from . import ops
from .ops.base import fq_quantize
from .quant.plan import QuantizedModel


def fake_quant_forward(qm: QuantizedModel, params: dict, x: np.ndarray) -> dict[str, torch.Tensor]:
    """Float64 fake-quant: parameters re-quantized here from the float ones, not taken from `qm`."""
    plan, graph = qm.plan, qm.graph
    outs = {graph.input.name: fq_quantize(torch.as_tensor(x, dtype=torch.float64), plan.input)}
    for node in graph.nodes[1:]:
        fmts = [qm.in_format(node, k) for k in range(len(node.inputs))]
        outs[node.name] = ops.rule(node).fake_quant(node, [outs[i] for i in node.inputs], plan.layer(node.name),
                                                    fmts, params.get(node.name))
    return outs
