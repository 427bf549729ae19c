"""The integer golden model: executes a quantized model exactly as docs/numerics.md says.

numpy int64 only; no floats after the input is quantized. Returns every
layer's integer output, so the RTL can be checked layer by layer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import ir
from .errors import HwgenError
from .fixed import Fixed, quantize_real, relu6_ceiling, requantize, saturate
from .quant.plan import QuantizedModel, acc_frac, add_frac, pool_acc_frac


@dataclass
class GoldenResult:
    outputs: dict[str, np.ndarray]  # node name -> int64 (N, *shape); the input node included
    saturations: dict[str, int]      # node name -> clipped values over the batch
    acc_peak_bits: dict[str, int]    # node name -> widest accumulator value seen (signed bits)

    def logits(self, qm: QuantizedModel) -> np.ndarray:
        return self.outputs[qm.graph.output.name]


def _check_acc(acc: np.ndarray, bits: int, name: str, peaks: dict) -> None:
    peak = int(np.abs(acc).max()) if acc.size else 0
    peaks[name] = peak.bit_length() + 1
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if acc.size and (acc.min() < lo or acc.max() > hi):
        raise HwgenError(f"golden: accumulator of layer {name!r} overflowed its {bits} bits; the plan's acc_bits is wrong")


def _windows(x: np.ndarray, kernel, stride, padding, pad_value: int) -> np.ndarray:
    """(N, C, H, W) -> (N, C, OH, OW, kh, kw) views over the padded input."""
    ph, pw = padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    win = np.lib.stride_tricks.sliding_window_view(x, kernel, axis=(2, 3))
    return win[:, :, :: stride[0], :: stride[1]]


def conv2d_acc(x: np.ndarray, w: np.ndarray, node: ir.Conv2d) -> np.ndarray:
    """Integer sum(w*a) over each output's fan-in, for any groups (depthwise included)."""
    win = _windows(x, node.kernel, node.stride, node.padding, 0)  # (N, C, OH, OW, kh, kw)
    g = node.groups
    cin, cout = node.in_channels // g, node.out_channels // g
    outs = []
    for gi in range(g):
        xs = win[:, gi * cin:(gi + 1) * cin]  # (N, cin, OH, OW, kh, kw)
        ws = w[gi * cout:(gi + 1) * cout]     # (cout, cin, kh, kw)
        outs.append(np.einsum("nchwij,ocij->nohw", xs, ws, optimize=True))
    return np.concatenate(outs, axis=1)


def run(qm: QuantizedModel, x_real: np.ndarray | None = None, *, x_int: np.ndarray | None = None) -> GoldenResult:
    """Run the batch `x_real` (quantized with the plan's input format) or integer inputs `x_int`."""
    plan, graph = qm.plan, qm.graph
    if x_int is None:
        x_int, in_sat = quantize_real(x_real, plan.input)
    else:
        x_int = np.asarray(x_int, dtype=np.int64)
        in_sat = 0
    outs: dict[str, np.ndarray] = {graph.input.name: x_int}
    sats: dict[str, int] = {graph.input.name: in_sat}
    peaks: dict[str, int] = {}
    for node in graph.nodes[1:]:
        lp = plan.layer(node.name)
        ins = [outs[i] for i in node.inputs]
        fmts = [qm.in_format(node, k) for k in range(len(node.inputs))]
        if isinstance(node, (ir.Conv2d, ir.Linear)):
            w, b = qm.weights[node.name], qm.biases[node.name]
            ch = w.shape[0]
            af = acc_frac(lp, fmts[0], ch)
            if isinstance(node, ir.Conv2d):
                acc = conv2d_acc(ins[0], w, node)
                bshape = (1, ch, 1, 1)
            else:
                acc = ins[0] @ w.T
                bshape = (1, ch)
            acc = acc + (b << (af - lp.bias_fracs(ch))).reshape(bshape)
            _check_acc(acc, lp.acc_bits, node.name, peaks)
            y, sats[node.name] = requantize(acc, af.reshape(bshape), lp.out, node.activation)
        elif isinstance(node, ir.AvgPool2d):
            acc = _windows(ins[0], node.kernel, node.stride, node.padding, 0).sum(axis=(-1, -2))
            if lp.reciprocal_value is not None:
                acc = acc * lp.reciprocal_value
            _check_acc(acc, lp.acc_bits, node.name, peaks)
            y, sats[node.name] = requantize(acc, pool_acc_frac(node, lp, fmts[0]), lp.out, node.activation)
        elif isinstance(node, ir.Add):
            f = add_frac(*fmts)
            acc = (ins[0] << (f - fmts[0].frac)) + (ins[1] << (f - fmts[1].frac))
            _check_acc(acc, lp.acc_bits, node.name, peaks)
            y, sats[node.name] = requantize(acc, f, lp.out, node.activation)
        elif isinstance(node, ir.MaxPool2d):
            y = _windows(ins[0], node.kernel, node.stride, node.padding, fmts[0].min).max(axis=(-1, -2))
            sats[node.name] = 0
        elif isinstance(node, ir.Relu):
            y = np.maximum(ins[0], 0)
            if node.activation == "relu6":
                y = np.minimum(y, relu6_ceiling(lp.out))
            y, sats[node.name] = saturate(y, lp.out)
        elif isinstance(node, ir.Flatten):
            y = ins[0].reshape(len(ins[0]), -1)
            sats[node.name] = 0
        else:
            raise HwgenError(f"golden: no integer rule for op {node.op!r}")
        outs[node.name] = y
    return GoldenResult(outs, sats, peaks)


def dequantize(q: np.ndarray, fmt: Fixed) -> np.ndarray:
    return np.asarray(q, dtype=np.float64) * fmt.step
