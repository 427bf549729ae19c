"""ONNX and QONNX files -> the same `Call` list the PyTorch front ends produce.

Each ONNX node becomes the aten call with the same meaning (Conv -> conv2d,
Gemm -> linear, Clip -> hardtanh, Resize -> upsample_nearest2d, ...), so the
one set of handlers in `aten` builds the graph IR. QONNX `Quant` nodes (as
Brevitas exports them) carry the trained formats: on a parameter they give the
layer's weight or bias format, on a computed tensor its output format; each
must have a power-of-2 scale and a zero point of 0 (`TrainedFormats`).
Reading a file parses protobuf only: nothing is unpickled or executed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelFileError, UnsupportedOpError
from ..fixed import Fixed
from .loader import Call, LoadedModel, Ref

MIN_OPSET = 13
QUANT_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas")


@dataclass
class TrainedFormats:
    """Formats a QONNX model's quantizers fix, keyed by ONNX tensor (activations) or by the call's output
    (weights, biases of the layer that reads them). The importer maps them onto graph nodes."""

    input: Fixed | None = None
    activations: dict[str, Fixed] = field(default_factory=dict)       # quantized tensor -> its format
    weights: dict[str, tuple[Fixed, tuple[int, ...] | None]] = field(default_factory=dict)
    biases: dict[str, tuple[Fixed, tuple[int, ...] | None]] = field(default_factory=dict)



def _attrs(node) -> dict[str, Any]:
    from onnx import helper

    out = {}
    for a in node.attribute:
        v = helper.get_attribute_value(a)
        out[a.name] = v.decode() if isinstance(v, bytes) else list(v) if isinstance(v, (list, tuple)) else v
    return out


def _power_of_two_frac(scale: np.ndarray, where: str) -> np.ndarray:
    s = np.asarray(scale, dtype=np.float64).reshape(-1)
    f = -np.log2(s) if np.all(s > 0) else np.full(s.shape, np.nan)
    if not np.all(np.isfinite(f)) or not np.allclose(f, np.round(f), atol=0, rtol=0):
        raise UnsupportedOpError(
            f"QONNX Quant at {where} has scale {s[:4].tolist()}{'...' if s.size > 4 else ''}, not a power of 2; "
            "hwgen keeps only power-of-2 (fixed-point) formats: train with Brevitas's FixedPoint quantizers "
            "(e.g. Int8WeightPerTensorFixedPoint, Int8ActPerTensorFixedPoint, Int16Bias), or export the float "
            "model to ONNX and let hwgen calibrate it")
    return np.round(f).astype(np.int64)


class _Reader:
    def __init__(self, model, source: str):
        self.source = source
        g = model.graph
        from onnx import numpy_helper

        self.consts: dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in g.initializer}
        self.refs: dict[str, str] = {}
        self.calls: list[Call] = []
        self.formats = TrainedFormats()
        self.producer: dict[str, Call] = {}
        self.consumers: dict[str, list] = {}
        for n in g.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.silu_sigmoids: set[str] = set()  # Sigmoid outputs folded into Mul(x, sigmoid(x)) = SiLU

    def value(self, name: str):
        if name == "":
            return None
        if name in self.consts:
            return self.consts[name]
        if name in self.refs:
            return Ref(self.refs[name])
        raise UnsupportedOpError(f"{self.source}: tensor {name!r} is neither computed before its use nor a constant")

    def const(self, name: str, node, what: str) -> np.ndarray:
        v = self.value(name)
        if not isinstance(v, np.ndarray):
            raise UnsupportedOpError(f"{node.op_type} {node.name!r} in {self.source}: {what} must be a constant")
        return v

    def emit(self, node, op: str, args: list, output: str | None = None) -> Call:
        out = output or node.output[0]
        call = Call(op=op, args=args, output=out, where=f"node {node.name or out!r} ({node.op_type})",
                    hint=node.name.removeprefix("node_").replace("/", "_").strip("_"))
        self.calls.append(call)
        self.refs[out] = out
        self.producer[out] = call
        return call


def _pads_2d(pads: list[int], node) -> list[int]:
    half = len(pads) // 2
    begin, end = pads[:half], pads[half:]
    if begin != end:
        raise UnsupportedOpError(f"{node.op_type} {node.name!r}: pads {pads} are asymmetric; hwgen pads both sides alike")
    return list(begin)


def _quant(r: _Reader, node, a: dict) -> None:
    x, scale, zero, bits = (list(node.input) + ["", "", "", ""])[:4]

    where = f"node {node.name or node.output[0]!r}"
    s, z, b = (r.const(n, node, w) for n, w in ((scale, "scale"), (zero, "zero point"), (bits, "bit width")))
    if np.any(z != 0):
        raise UnsupportedOpError(f"QONNX Quant at {where} has a non-zero zero point; hwgen's formats are symmetric "
                                 "(use Brevitas quantizers with zero_point 0, e.g. the FixedPoint ones)")
    nbits = int(np.asarray(b).reshape(-1)[0])
    signed = bool(a.get("signed", 1))
    fracs = _power_of_two_frac(s, where)
    fmt = Fixed(nbits, int(fracs.min()), signed)
    xv = r.value(x)
    if isinstance(xv, np.ndarray):  # a parameter: its dequantized value, and the format for its layer
        scale_b = np.asarray(s, dtype=np.float64).reshape(np.shape(s) + (1,) * max(0, xv.ndim - np.ndim(s)))
        q = np.clip(np.rint(xv / scale_b), fmt.min, fmt.max)
        r.consts[node.output[0]] = q * scale_b
        channels = tuple(int(f) for f in fracs) if fracs.size > 1 else None
        r.formats.weights[node.output[0]] = (Fixed(nbits, int(fracs.max()) if channels else fmt.frac, signed), channels)
        return
    if fracs.size != 1:
        raise UnsupportedOpError(f"QONNX Quant at {where}: per-channel activation scales are not supported")
    if x in r.refs and r.refs[x] == "input" and not r.calls:
        r.formats.input = fmt
    r.formats.activations[node.output[0]] = fmt
    r.emit(node, "alias", [xv])


def _layer_formats(r: _Reader, call: Call, weight: str, bias: str) -> None:
    """The weight/bias formats of a layer whose parameters came through Quant nodes."""
    if weight in r.formats.weights:
        r.formats.weights[call.output] = r.formats.weights.pop(weight)
    if bias and bias in r.formats.weights:
        r.formats.biases[call.output] = r.formats.weights.pop(bias)


def _conv(r, node, a):
    x, w, bias = (list(node.input) + [""])[:3]
    wv = r.const(w, node, "the weight")
    if a.get("auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise UnsupportedOpError(f"Conv {node.name!r}: auto_pad {a['auto_pad']} is not supported; export with explicit pads")
    k = wv.ndim - 2
    pads = _pads_2d(a.get("pads", [0] * 2 * k), node)
    call = r.emit(node, "conv2d", [r.value(x), wv, r.value(bias), a.get("strides", [1] * k), pads,
                                   a.get("dilations", [1] * k), a.get("group", 1)])
    _layer_formats(r, call, w, bias)


def _gemm(r, node, a):
    x, w, bias = (list(node.input) + [""])[:3]
    if a.get("alpha", 1.0) != 1.0 or a.get("beta", 1.0) != 1.0 or a.get("transA", 0):
        raise UnsupportedOpError(f"Gemm {node.name!r}: only alpha = beta = 1 without transA is supported")
    wv = r.const(w, node, "the weight")
    call = r.emit(node, "linear", [r.value(x), wv if a.get("transB", 0) else wv.T, r.value(bias)])
    _layer_formats(r, call, w, bias)


def _matmul(r, node, a):
    x, w = node.input[:2]
    wv = r.const(w, node, "the weight (second operand)")
    if wv.ndim != 2:
        raise UnsupportedOpError(f"MatMul {node.name!r}: only a 2-d constant weight is supported")
    call = r.emit(node, "linear", [r.value(x), wv.T, None])
    _layer_formats(r, call, w, "")


def _add(r, node, a):
    x, y = node.input[:2]
    xv, yv = r.value(x), r.value(y)
    if isinstance(xv, np.ndarray):
        xv, yv, x, y = yv, xv, y, x
    producer = r.producer.get(x) if isinstance(xv, Ref) else None
    if isinstance(yv, np.ndarray) and producer is not None and producer.op in ("linear", "conv2d") \
            and producer.args[2] is None and len(r.consumers.get(x, [])) == 1:
        producer.args[2] = yv.reshape(-1)  # MatMul + Add (or Conv + Add) of a constant: the layer's bias
        r.refs[node.output[0]] = r.refs[x]
        if y in r.formats.weights:
            r.formats.biases[producer.output] = r.formats.weights.pop(y)
        return
    r.emit(node, "add", [xv, yv])


def _clip(r, node, a):
    lo = r.value(node.input[1]) if len(node.input) > 1 and node.input[1] else a.get("min")
    hi = r.value(node.input[2]) if len(node.input) > 2 and node.input[2] else a.get("max")
    lo = None if lo is None else float(np.asarray(lo).reshape(-1)[0])
    hi = None if hi is None else float(np.asarray(hi).reshape(-1)[0])
    if lo == 0.0 and hi is None:
        r.emit(node, "relu", [r.value(node.input[0])])
    elif lo is not None and hi is not None:
        r.emit(node, "hardtanh", [r.value(node.input[0]), lo, hi])
    else:
        raise UnsupportedOpError(f"Clip {node.name!r}: only Clip(min=0) (ReLU) or Clip with both bounds is supported")


def _pool(r, node, a, op):
    k = a["kernel_shape"]
    pads = _pads_2d(a.get("pads", [0] * 2 * len(k)), node)
    if op == "max_pool2d":
        args = [a.get("strides", k), pads, a.get("dilations", [1] * len(k)), a.get("ceil_mode", 0)]
    else:
        args = [a.get("strides", k), pads, a.get("ceil_mode", 0), bool(a.get("count_include_pad", 0)), None]
    name = op if len(k) == 2 else op.replace("2d", "1d")
    r.emit(node, name, [r.value(node.input[0]), k, *args])


def _reduce_mean(r, node, a):
    axes = a.get("axes")
    if axes is None and len(node.input) > 1:
        axes = [int(v) for v in r.const(node.input[1], node, "axes")]
    r.emit(node, "mean", [r.value(node.input[0]), list(axes or []), bool(a.get("keepdims", 1))])


def _resize(r, node, a):
    if a.get("mode", "nearest") != "nearest":
        raise UnsupportedOpError(f"{node.op_type} {node.name!r}: mode {a.get('mode')!r}; only nearest is supported")
    inputs = list(node.input) + ["", "", ""]
    x = r.value(inputs[0])
    scales = inputs[2] if node.op_type == "Resize" else inputs[1]
    if scales and np.asarray(r.const(scales, node, "scales")).size:
        s = r.const(scales, node, "scales").reshape(-1)
        r.emit(node, "upsample_nearest2d", [x, None, [float(s[-2]), float(s[-1])]])
    else:
        sizes = r.const(inputs[3], node, "sizes").reshape(-1).astype(int)
        r.emit(node, "upsample_nearest2d", [x, [int(sizes[-2]), int(sizes[-1])], None])


def _pad(r, node, a):
    pads = [int(v) for v in (r.const(node.input[1], node, "pads") if len(node.input) > 1 else a["pads"])]
    value = r.value(node.input[2]) if len(node.input) > 2 and node.input[2] else a.get("value", 0.0)
    if a.get("mode", "constant") != "constant" or len(pads) != 8 or any(pads[i] for i in (0, 1, 4, 5)):
        raise UnsupportedOpError(f"Pad {node.name!r}: only constant padding of the two spatial dims is supported")
    top, left, bottom, right = pads[2], pads[3], pads[6], pads[7]
    r.emit(node, "constant_pad_nd", [r.value(node.input[0]), [left, right, top, bottom],
                                     float(np.asarray(value).reshape(-1)[0])])


def _mul(r, node, a):
    x, y = node.input[:2]
    for act, other in ((x, y), (y, x)):
        if act in r.silu_sigmoids:
            r.emit(node, "silu", [r.value(other)])
            return
    raise UnsupportedOpError(f"unsupported op Mul at node {node.name!r}: hwgen reads Mul only as x * sigmoid(x) (SiLU)")


def _sigmoid(r, node, a):
    out = node.output[0]
    users = r.consumers.get(out, [])
    if len(users) == 1 and users[0].op_type == "Mul" and node.input[0] in users[0].input:
        r.silu_sigmoids.add(out)  # SiLU: emitted at the Mul
        return
    r.emit(node, "sigmoid", [r.value(node.input[0])])


def _batchnorm(r, node, a):
    x, gamma, beta, mean, var = node.input[:5]
    r.emit(node, "batch_norm", [r.value(x), *(r.const(n, node, "a BatchNorm parameter") for n in (gamma, beta, mean, var)),
                                False, 0.1, a.get("epsilon", 1e-5)])


def _simple(op):
    return lambda r, node, a: r.emit(node, op, [r.value(node.input[0])])


HANDLERS = {
    "Conv": _conv, "Gemm": _gemm, "MatMul": _matmul, "Add": _add, "Clip": _clip, "Mul": _mul, "Sigmoid": _sigmoid,
    "Relu": _simple("relu"), "Tanh": _simple("tanh"), "HardSwish": _simple("hardswish"),
    "Identity": _simple("alias"), "Dropout": _simple("dropout"),
    "LeakyRelu": lambda r, n, a: r.emit(n, "leaky_relu", [r.value(n.input[0]), a.get("alpha", 0.01)]),
    "HardSigmoid": lambda r, n, a: (r.emit(n, "hardsigmoid", [r.value(n.input[0])])
                                    if math.isclose(a.get("alpha", 0.2), 1 / 6, rel_tol=1e-6) and a.get("beta", 0.5) == 0.5
                                    else _unsupported(r, n, "HardSigmoid other than torch's (alpha 1/6, beta 1/2)")),
    "MaxPool": lambda r, n, a: _pool(r, n, a, "max_pool2d"),
    "AveragePool": lambda r, n, a: _pool(r, n, a, "avg_pool2d"),
    "GlobalAveragePool": lambda r, n, a: r.emit(n, "adaptive_avg_pool2d", [r.value(n.input[0]), [1, 1]]),
    "ReduceMean": _reduce_mean,
    "Flatten": lambda r, n, a: (r.emit(n, "flatten", [r.value(n.input[0]), 1, -1]) if a.get("axis", 1) == 1
                                else _unsupported(r, n, "Flatten other than from axis 1")),
    "Reshape": lambda r, n, a: r.emit(n, "reshape", [r.value(n.input[0]),
                                                     [int(v) for v in r.const(n.input[1], n, "the shape")]]),
    "Concat": lambda r, n, a: r.emit(n, "cat", [[r.value(i) for i in n.input], a.get("axis", 1)]),
    "BatchNormalization": _batchnorm,
    "Resize": _resize, "Upsample": _resize, "Pad": _pad,
    "Softmax": lambda r, n, a: r.emit(n, "softmax", [r.value(n.input[0]), a.get("axis", -1)]),
    "LogSoftmax": lambda r, n, a: r.emit(n, "log_softmax", [r.value(n.input[0]), a.get("axis", -1)]),
    "Quant": _quant,
}


def _unsupported(r, node, what):
    raise UnsupportedOpError(f"unsupported op {node.op_type} at node {node.name!r} in {r.source}: {what}")


def load_onnx(path: Path) -> LoadedModel:
    try:
        import onnx
    except ImportError:  # pragma: no cover - onnx is a dependency
        raise ModelFileError("reading ONNX needs the onnx package: pip install onnx") from None
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"cannot read ONNX file {str(path)!r} ({first}); it is truncated, corrupt or not ONNX") from None
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < MIN_OPSET:
        raise ModelFileError(f"{str(path)!r} uses ONNX opset {opset}; hwgen reads opset {MIN_OPSET} or newer: "
                             f"export again with opset_version={MIN_OPSET} or later")
    g = model.graph
    inits = {t.name for t in g.initializer}
    inputs = [i for i in g.input if i.name not in inits]
    if len(inputs) != 1 or len(g.output) != 1:
        raise UnsupportedOpError(f"{path}: the model must take one tensor and return one, it takes {len(inputs)} "
                                 f"and returns {len(g.output)}")
    dims = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim]
    shape = tuple(dims[1:]) if len(dims) > 1 and all(d > 0 for d in dims[1:]) else None
    r = _Reader(model, str(path))
    r.refs[inputs[0].name] = "input"
    for node in g.node:
        if node.op_type == "Constant":
            r.consts[node.output[0]] = onnx.numpy_helper.to_array(node.attribute[0].t).astype(np.float64)
            continue
        handler = HANDLERS.get(node.op_type)
        if handler is None or (node.domain not in ("", "ai.onnx") and node.op_type != "Quant") \
                or (node.op_type == "Quant" and node.domain not in QUANT_DOMAINS):
            from .. import ir
            raise UnsupportedOpError(f"unsupported op {node.op_type!r} ({node.domain or 'ai.onnx'}) at node "
                                     f"{node.name!r} in {path}; hwgen supports: {ir.SUPPORTED_LAYERS}")
        handler(r, node, _attrs(node))
    out = g.output[0].name
    if out not in r.refs:
        raise UnsupportedOpError(f"{path}: the output {out!r} is not computed by the graph")
    return LoadedModel("input", shape, r.calls, r.refs[out], str(path), "onnx", extra={"formats": r.formats})
