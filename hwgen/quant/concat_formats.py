"""Concatenation without a copy: the layers whose only reader is a torch.cat store in the cat's format.

A cat's inputs then need no requantization, so the hardware plan lets their
producers write straight into the cat's tensor (hwplan.allocation) and the
cat runs no program entry. Only producers that requantize (not the input, not
a max pool or flatten, which keep their input's format) and that nothing else
reads are changed, so no other layer's formats move.
"""
from __future__ import annotations

from dataclasses import replace

from .. import ir, ops
from .plan import QuantPlan


def share_concat_formats(graph: ir.Graph, plan: QuantPlan, keep: frozenset[str] = frozenset()) -> QuantPlan:
    """`keep`: layers whose format is fixed otherwise (a QONNX model's quantizers); those stay, and copy."""
    for cat in graph.nodes:
        if not isinstance(cat, ir.Concat) or cat.activation != "none":
            continue
        out = plan.layer(cat.name).out
        for src in cat.inputs:
            node = graph.node(src)
            if (isinstance(node, ir.Input) or ops.rule(node).passthrough or len(graph.consumers(src)) != 1
                    or src in keep):
                continue
            plan = plan.with_layer(replace(plan.layer(src), out=out, acc_bits=None))
    return plan
