"""Formats a quantization-aware trained model already fixes (QONNX `Quant` nodes), laid over a calibrated plan.

Where the model's quantizers give a tensor's format (weights, biases, layer
outputs, the input), the plan keeps it exactly; every other tensor (an Add's
output, logits without a quantizer) keeps the calibrated method's choice. A
bias without its own quantizer gets the range rule, capped at the trained
accumulator grid, so its shift stays exact.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .. import ir, ops
from ..errors import PlanError
from ..importer.onnx_front import TrainedFormats
from .plan import QuantPlan
from .range_method import bias_format


def apply_trained(plan: QuantPlan, graph: ir.Graph, params: dict, trained: TrainedFormats) -> QuantPlan:
    fmts = {graph.input.name: trained.input or plan.input}
    layers, kept = [], 0
    for node in graph.nodes[1:]:
        lp = plan.layer(node.name)
        ins = [fmts[i] for i in node.inputs]
        out = trained.activations.get(node.name, lp.out)
        if ops.rule(node).passthrough:
            if node.name in trained.activations and out != ins[0]:
                raise PlanError(f"the model quantizes the output of {node.op} {node.name!r} to {out}, but it does no "
                                f"arithmetic and keeps its input's format {ins[0]}: quantize its input that way instead")
            out = ins[0]
        kept += node.name in trained.activations
        lp = replace(lp, out=out, acc_bits=None)
        if node.name in trained.weights:
            wf, wch = trained.weights[node.name]
            lp = replace(lp, weight=wf, weight_channel_frac=wch)
            kept += 1
        if lp.weight is not None:
            ch = params[node.name]["weight"].shape[0]
            acc_fracs = lp.weight_fracs(ch) + ins[0].frac
            if node.name in trained.biases:
                bf, bch = trained.biases[node.name]
                lp = replace(lp, bias=bf, bias_channel_frac=bch)
                kept += 1
            else:
                bf, bch = bias_format(params[node.name]["bias"], lp.bias.bits, np.asarray(acc_fracs),
                                      lp.bias_channel_frac is not None)
                lp = replace(lp, bias=bf, bias_channel_frac=bch)
        fmts[node.name] = out
        layers.append(lp)
    note = (f"qonnx: {kept} formats taken from the model's quantizers"
            f"{' and its input quantizer' if trained.input else ''}; the rest from {plan.method}")
    return replace(plan, input=fmts[graph.input.name], layers=tuple(layers), method=f"qonnx+{plan.method}",
                   notes=(*plan.notes, note))
