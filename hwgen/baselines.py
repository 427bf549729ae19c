"""Reference quantizers from other toolkits, run on the same imported graph for comparison.

- torch.ao: post-training static int8 quantization (FX graph mode, the
  "x86" / fbgemm default qconfig: per-channel symmetric int8 weights, per-tensor
  affine uint8 activations, float scales). Note it is not power-of-2.
- Brevitas (if installed): post-training quantization with power-of-two
  scales (Int8WeightPerTensorFixedPoint / Int8ActPerTensorFixedPoint layers),
  calibrated on the same data.
Both build a plain nn.Module from the BN-folded graph IR, so the float
starting point is identical to hwgen's.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn

from . import ir, ops


class IRModule(nn.Module):
    """The graph IR as an nn.Module of standard layers (convs, linears, ReLUs, pools) for other quantizers."""

    def __init__(self, graph: ir.Graph, params: dict, conv=nn.Conv2d, linear=nn.Linear, relu=nn.ReLU):
        super().__init__()
        self.graph = graph
        self.layers = nn.ModuleDict()
        self.key = {n.name: f"n{i}" for i, n in enumerate(graph.nodes)}
        for node in graph.nodes[1:]:
            k = self.key[node.name]
            if isinstance(node, ir.Conv2d):
                m = conv(node.in_channels, node.out_channels, node.kernel, node.stride, node.padding, groups=node.groups)
            elif isinstance(node, ir.Linear):
                m = linear(node.in_features, node.out_features)
            else:
                m = None
            if m is not None:
                with torch.no_grad():
                    m.weight.copy_(torch.as_tensor(params[node.name]["weight"], dtype=torch.float32))
                    m.bias.copy_(torch.as_tensor(params[node.name]["bias"], dtype=torch.float32))
                self.layers[k] = m
            act = getattr(node, "activation", "none")
            if act == "relu":
                self.layers[k + "_act"] = relu()  # the toolkit's own (quantized) ReLU

    def forward(self, x):
        outs = {self.graph.input.name: x}
        for node in self.graph.nodes[1:]:
            k = self.key[node.name]
            a = [outs[i] for i in node.inputs]
            act = getattr(node, "activation", "none")
            if k + "_act" in self.layers:
                act, node = "none", dataclasses.replace(node, activation="none")
            y = self.layers[k](a[0]) if k in self.layers else ops.rule(node).float(node, a, None)
            y = ops.float_activation(y, act)
            if k + "_act" in self.layers:
                y = self.layers[k + "_act"](y)
            outs[node.name] = y
        return outs[self.graph.output.name]


def torch_int8_logits(graph: ir.Graph, params: dict, calib: np.ndarray, test: np.ndarray) -> np.ndarray:
    """torch.ao FX post-training int8 (per-channel weights), calibrated on `calib`; logits on `test`."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    torch.backends.quantized.engine = "x86" if "x86" in torch.backends.quantized.supported_engines else "fbgemm"
    model = IRModule(graph, params).eval()
    example = (torch.as_tensor(calib[:1], dtype=torch.float32),)
    prepared = prepare_fx(model, get_default_qconfig_mapping(torch.backends.quantized.engine), example)
    with torch.no_grad():
        for start in range(0, len(calib), 256):
            prepared(torch.as_tensor(calib[start:start + 256], dtype=torch.float32))
        quantized = convert_fx(prepared)
        return quantized(torch.as_tensor(test, dtype=torch.float32)).numpy()


def brevitas_available() -> bool:
    try:
        import brevitas  # noqa: F401
    except ImportError:
        return False
    return True


def brevitas_pow2_logits(graph: ir.Graph, params: dict, calib: np.ndarray, test: np.ndarray, bits: int = 8) -> np.ndarray:
    """Brevitas PTQ with power-of-two (fixed-point) scales: weights and activations per tensor, `bits` wide."""
    import brevitas.nn as qnn
    from brevitas.graph.calibrate import calibration_mode
    from brevitas.quant import Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Uint8ActPerTensorFixedPoint

    def conv(*a, **k):
        return qnn.QuantConv2d(*a, **k, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=bits,
                               input_quant=Int8ActPerTensorFixedPoint, input_bit_width=bits)

    def linear(*a, **k):
        return qnn.QuantLinear(*a, **k, weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=bits,
                               input_quant=Int8ActPerTensorFixedPoint, input_bit_width=bits)

    def relu():
        return qnn.QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=bits)

    model = IRModule(graph, params, conv=conv, linear=linear, relu=relu).eval()
    with torch.no_grad(), calibration_mode(model):
        for start in range(0, len(calib), 256):
            model(torch.as_tensor(calib[start:start + 256], dtype=torch.float32))
    with torch.no_grad():
        return model(torch.as_tensor(test, dtype=torch.float32)).detach().numpy()
