"""The integer golden model: executes a quantized model exactly as docs/numerics.md says.

numpy int64 only; no floats after the input is quantized. Returns every
layer's integer output, so the RTL can be checked layer by layer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import ops
from .errors import HwgenError
from .fixed import Fixed, quantize_real
from .quant.plan import QuantizedModel


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
        fmts = [qm.in_format(node, k) for k in range(len(node.inputs))]
        result = ops.rule(node).golden(node, [outs[i] for i in node.inputs], lp, fmts, qm)
        if result.acc is not None:
            _check_acc(result.acc, lp.acc_bits, node.name, peaks)
        outs[node.name], sats[node.name] = result.y, result.saturations
    return GoldenResult(outs, sats, peaks)


def dequantize(q: np.ndarray, fmt: Fixed) -> np.ndarray:
    return np.asarray(q, dtype=np.float64) * fmt.step
