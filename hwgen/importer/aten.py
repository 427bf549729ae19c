"""Handlers from normalized aten calls to graph-IR nodes, plus the import passes.

Passes run in order: build (one handler per op, shapes inferred as we go)
-> fold_batchnorm -> fuse_activations -> prune. Each is a small function.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np

from .. import ir, ops
from ..errors import ApproximationWarning, UnsupportedOpError
from ..fixed import LEAKY_MAX_SHIFT
from .loader import Call, LoadedModel, Ref, Unresolved

Params = dict[str, dict[str, np.ndarray]]


@dataclass(frozen=True, kw_only=True)
class _BatchNorm(ir.Node):
    """Import-time only: folded away before the graph leaves the importer."""

    scale: tuple[float, ...]
    shift: tuple[float, ...]
    op: ClassVar[str] = "batchnorm"


class Builder:
    def __init__(self, loaded: LoadedModel, input_shape: tuple[int, ...]):
        self.loaded = loaded
        # a 1-d signal (C, L) is an image of height 1, (C, 1, L): the 1-d ops below become their 2-d forms
        shape = tuple(input_shape) if len(input_shape) != 2 else (input_shape[0], 1, input_shape[1])
        self.nodes: list[ir.Node] = [ir.Input(name=loaded.input_name, shape=shape)]
        self.params: Params = {}
        self.alias: dict[str, str] = {}
        self.names = {loaded.input_name}
        self.host_ops: list[tuple[str, str, str]] = []  # (op, output, where) of ops left to the host
        self.pads: dict[str, tuple[int, int]] = {}  # zero-padded tensor -> (py, px), folded into its readers

    def ref(self, call: Call, value, fold_pad: bool = False) -> ir.Node:
        """The node behind `value`; a zero-padded tensor only for a reader that folds the padding (`fold_pad`)."""
        if not isinstance(value, Ref):
            raise UnsupportedOpError(
                f"{call.op!r} at {call.where}: expected a computed tensor, got a constant; "
                f"hwgen supports only: {ir.SUPPORTED_LAYERS}"
            )
        if value.name in self.pads and not fold_pad:
            raise UnsupportedOpError(
                f"zero padding feeds {call.op!r} at {call.where}; hwgen folds ZeroPad2d/ConstantPad(0) only into "
                "the Conv or AvgPool (count_include_pad=True) that reads it")
        name = self.alias.get(value.name, value.name)
        return next(n for n in self.nodes if n.name == name)

    def name_for(self, call: Call) -> str:
        base = call.hint.replace(".", "_") if call.hint else call.op.strip("_")
        name, k = base, 1
        while name in self.names:
            k += 1
            name = f"{base}_{k}"
        self.names.add(name)
        return name

    def add(self, call: Call, node: ir.Node, weight=None, bias=None) -> ir.Node:
        """Append `node` with the shape its op rule gives (hwgen.ops: the one shape rule); import-time-only
        nodes (BatchNorm) keep their input's."""
        ins = [next(n for n in self.nodes if n.name == i).shape for i in node.inputs]
        shape = ops.rule(node).shape(node, ins) if type(node) in ops.REGISTRY else ins[0]
        node = dataclasses.replace(node, shape=tuple(shape))
        self.nodes.append(node)
        self.alias[call.output] = node.name
        if weight is not None:
            self.params[node.name] = {"weight": np.asarray(weight, np.float64),
                                      "bias": np.zeros(weight.shape[0]) if bias is None else np.asarray(bias, np.float64)}
        return node


def _pair(v, call: Call, what: str) -> tuple[int, int]:
    if isinstance(v, Unresolved) or v is None:
        raise UnsupportedOpError(f"{call.op!r} at {call.where}: {what} must be a constant")
    if isinstance(v, (list, tuple)):
        if len(v) == 1:
            return int(v[0]), int(v[0])
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _along_width(v, fill: int):
    """A 1-d op's size or stride as the (height, width) pair of its height-1 2-d form."""
    if v is None or isinstance(v, Unresolved):
        return v
    if isinstance(v, (list, tuple)):
        return [fill, *v] if len(v) == 1 else v
    return [fill, int(v)]


def _as_2d(call: Call, *positions_and_fills: tuple[int, int]) -> Call:
    """The call of a 1-d op with its size arguments along the width of a height-1 image."""
    args = list(call.args)
    for pos, fill in positions_and_fills:
        if pos < len(args) and args[pos] not in (None, []):
            args[pos] = _along_width(args[pos], fill)
    return dataclasses.replace(call, args=args)


def h_max_pool1d(b, call):
    h_max_pool2d(b, _as_2d(call, (1, 1), (2, 1), (3, 0), (4, 1)))


def h_avg_pool1d(b, call):
    h_avg_pool2d(b, _as_2d(call, (1, 1), (2, 1), (3, 0)))


def h_adaptive_avg_pool1d(b, call):
    h_adaptive_avg_pool2d(b, _as_2d(call, (1, 1)))


def _need_rank(call: Call, node: ir.Node, rank: int) -> None:
    if len(node.shape) != rank:
        raise UnsupportedOpError(
            f"{call.op!r} at {call.where}: expected a {rank}-d (per sample) input, got shape {node.shape}"
        )


def _conv(b: Builder, call: Call, x, w, bias, stride, padding, dilation, groups) -> None:
    pre_pad = zero_padding(b, x)
    src = b.ref(call, x, fold_pad=True)
    _need_rank(call, src, 3)
    if not isinstance(w, np.ndarray):
        raise UnsupportedOpError(f"conv2d at {call.where}: the weight must be a parameter, not computed")
    if w.ndim == 3:  # Conv1d: a (1, k) kernel over the height-1 image
        w = w[:, :, None, :]
        stride, dilation = _along_width(stride, 1), _along_width(dilation, 1)
        padding = padding if isinstance(padding, str) else _along_width(padding, 0)
    if _pair(dilation, call, "dilation") != (1, 1):
        raise UnsupportedOpError(f"conv2d at {call.where}: dilation {dilation} is not supported (only 1)")
    kh, kw = w.shape[2], w.shape[3]
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same" and kh % 2 and kw % 2 and _pair(stride, call, "stride") == (1, 1):
            padding = (kh // 2, kw // 2)
        else:
            raise UnsupportedOpError(f"conv2d at {call.where}: padding={padding!r} is not supported")
    stride, padding = _pair(stride, call, "stride"), _pair(padding, call, "padding")
    padding = (padding[0] + pre_pad[0], padding[1] + pre_pad[1])
    groups = int(groups)
    c, h, wd = src.shape
    if c != w.shape[1] * groups:
        raise UnsupportedOpError(f"conv2d at {call.where}: {c} input channels do not match weight {w.shape}")
    node = ir.Conv2d(name=b.name_for(call), inputs=(src.name,), in_channels=c,
                     out_channels=w.shape[0], kernel=(kh, kw), stride=stride, padding=padding, groups=groups)
    b.add(call, node, w, bias if isinstance(bias, np.ndarray) else None)


def h_conv2d(b, call):
    _conv(b, call, *call.args[:7])


def h_convolution(b, call):
    x, w, bias, stride, padding, dilation, transposed, _out_pad, groups = call.args[:9]
    if transposed:
        raise UnsupportedOpError(f"ConvTranspose at {call.where} is not supported; supported: {ir.SUPPORTED_LAYERS}")
    _conv(b, call, x, w, bias, stride, padding, dilation, groups)


def h_linear(b, call):
    x, w, bias = call.args[:3]
    src = b.ref(call, x)
    _need_rank(call, src, 1)
    if not isinstance(w, np.ndarray):
        raise UnsupportedOpError(f"linear at {call.where}: the weight must be a parameter, not computed")
    if src.shape[0] != w.shape[1]:
        raise UnsupportedOpError(f"linear at {call.where}: input of {src.shape[0]} features, weight {w.shape}")
    node = ir.Linear(name=b.name_for(call), inputs=(src.name,),
                     in_features=w.shape[1], out_features=w.shape[0])
    b.add(call, node, w, bias if isinstance(bias, np.ndarray) else None)


def _relu(b, call, activation):
    src = b.ref(call, call.args[0])
    b.add(call, ir.Relu(name=b.name_for(call), inputs=(src.name,), activation=activation))


def h_relu(b, call):
    _relu(b, call, "relu")


def h_relu6(b, call):
    _relu(b, call, "relu6")


def h_hardtanh(b, call):
    lo, hi = (call.args + [-1.0, 1.0])[1:3]
    if not all(isinstance(v, (int, float)) for v in (lo, hi)) or not float(lo) < float(hi):
        raise UnsupportedOpError(f"hardtanh({lo}, {hi}) at {call.where}: the bounds must be constants with min < max")
    _relu(b, call, "relu6" if (float(lo), float(hi)) == (0.0, 6.0) else f"clamp:{float(lo)!r}:{float(hi)!r}")


def h_leaky_relu(b, call):
    """LeakyReLU: slope 2**-K exactly; any other slope in (0, 1) rounds to the nearest power of 2, with a warning."""
    slope = (call.args + [0.01])[1]
    if not isinstance(slope, (int, float)) or not 0 < float(slope) < 1:
        raise UnsupportedOpError(f"leaky_relu at {call.where}: negative_slope {slope!r} is not supported; "
                                 "use a constant slope between 0 and 1")
    k = min(max(round(-math.log2(float(slope))), 1), LEAKY_MAX_SHIFT)
    if 2.0 ** -k != float(slope):
        warnings.warn(f"leaky_relu at {call.where}: negative_slope {slope} rounded to the nearest power of 2, "
                      f"2**-{k} = {2.0 ** -k}; the float reference uses that slope too", ApproximationWarning,
                      stacklevel=2)
    _relu(b, call, f"leaky:{k}")


def _lookup(function):
    def handler(b, call):
        src = b.ref(call, call.args[0])
        b.add(call, ir.Lut(name=b.name_for(call), inputs=(src.name,), function=function))
    return handler


def h_cat(b, call):
    tensors, dim = (call.args + [0])[:2]
    if not isinstance(tensors, list) or len(tensors) < 2:
        raise UnsupportedOpError(f"cat at {call.where}: expected a list of at least two tensors")
    srcs = [b.ref(call, t) for t in tensors]
    rank = len(srcs[0].shape)
    if int(dim) not in (1, 1 - rank - 1) or any(len(x.shape) != rank or x.shape[1:] != srcs[0].shape[1:] for x in srcs):
        raise UnsupportedOpError(f"cat at {call.where}: only concatenation along channels (dim 1) of tensors with "
                                 f"equal other dims is supported, got dim {dim} and shapes {[x.shape for x in srcs]}")
    b.add(call, ir.Concat(name=b.name_for(call), inputs=tuple(x.name for x in srcs)))


def h_upsample_nearest(b, call):
    src = b.ref(call, call.args[0])
    _need_rank(call, src, 3)
    c, h, w = src.shape
    out_size = call.args[1] if len(call.args) > 1 else None
    rest = [v for v in call.args[2:] if v is not None]
    scales = [float(v) for v in (rest[0] if rest and isinstance(rest[0], list) else rest)]
    if out_size not in (None, []) and not isinstance(out_size, Unresolved):
        scales = [out_size[0] / h, out_size[1] / w]
    if len(scales) != 2 or scales[0] != scales[1] or scales[0] != int(scales[0]) or scales[0] < 1:
        raise UnsupportedOpError(f"upsample at {call.where}: only nearest upsampling by one integer factor in both "
                                 f"dims is supported, got scales {scales or out_size}")
    k = int(scales[0])
    b.add(call, ir.Upsample(name=b.name_for(call), inputs=(src.name,), scale=k))


def _batchnorm(b, call, x, gamma, beta, mean, var, eps):
    src = b.ref(call, x)
    if not all(isinstance(t, np.ndarray) for t in (mean, var)):
        raise UnsupportedOpError(f"batch_norm at {call.where}: running statistics are missing (track_running_stats=False?)")
    c = mean.shape[0]
    gamma = np.ones(c) if gamma is None else gamma
    beta = np.zeros(c) if beta is None else beta
    scale = gamma / np.sqrt(var + float(eps))
    shift = beta - mean * scale
    node = _BatchNorm(name=b.name_for(call), inputs=(src.name,),
                      scale=tuple(scale.tolist()), shift=tuple(shift.tolist()))
    b.add(call, node)


def h_batch_norm(b, call):
    x, gamma, beta, mean, var, training, _mom, eps = call.args[:8]
    if training:
        raise UnsupportedOpError(f"batch_norm at {call.where} is in training mode; call model.eval() before export")
    _batchnorm(b, call, x, gamma, beta, mean, var, eps)


def h_native_bn_no_training(b, call):
    x, gamma, beta, mean, var, _mom, eps = call.args[:7]
    _batchnorm(b, call, x, gamma, beta, mean, var, eps)


def h_getitem(b, call):
    src, index = call.args[0], call.args[1]
    if index != 0:
        raise UnsupportedOpError(f"getitem[{index}] at {call.where} is not supported")
    b.alias[call.output] = b.ref(call, src).name


def h_identity(b, call):
    b.alias[call.output] = b.ref(call, call.args[0]).name


def h_pad(b, call):
    """ZeroPad2d / F.pad(value=0), symmetric: folded into the padding of the Conv or AvgPool that reads it."""
    x, pads, mode, value = (call.args + [None] * 4)[:4]
    if mode not in (None, "constant") or value not in (None, 0, 0.0) or not isinstance(pads, list) \
            or len(pads) not in (2, 4):
        raise UnsupportedOpError(f"pad at {call.where}: only zero padding of the two spatial dims is supported "
                                 f"(got pads {pads}, mode {mode!r}, value {value!r})")
    left, right, top, bottom = (*pads, 0, 0) if len(pads) == 2 else pads
    if left != right or top != bottom:
        raise UnsupportedOpError(f"pad at {call.where}: padding {pads} (left, right, top, bottom) is asymmetric; "
                                 "hwgen pads both sides alike: use equal left/right and top/bottom padding")
    inner = zero_padding(b, x)  # padding of padding adds up
    b.alias[call.output] = b.ref(call, x, fold_pad=True).name
    b.pads[call.output] = (inner[0] + top, inner[1] + left)


def zero_padding(b, x) -> tuple[int, int]:
    """The (py, px) zero padding recorded on `x` by `pad` ops, (0, 0) if none."""
    return b.pads.get(x.name, (0, 0)) if isinstance(x, Ref) else (0, 0)


def h_host_softmax(b, call):
    """(Log-)softmax: monotonic, so the class is the logits' argmax. Only as the model's last op, left to the
    host: the accelerator returns the logits (checked in `build`)."""
    h_identity(b, call)
    b.host_ops.append((call.op.lstrip("_"), call.output, call.where))


def h_max_pool2d(b, call):
    x, kernel, stride, padding, dilation, ceil_mode = (call.args + [None] * 6)[:6]
    src = b.ref(call, x)
    _need_rank(call, src, 3)
    kernel = _pair(kernel, call, "kernel_size")
    stride = kernel if stride in (None, []) else _pair(stride, call, "stride")
    padding = (0, 0) if padding is None else _pair(padding, call, "padding")
    if dilation not in (None, []) and _pair(dilation, call, "dilation") != (1, 1):
        raise UnsupportedOpError(f"max_pool2d at {call.where}: dilation {dilation} is not supported")
    _pool(b, call, src, kernel, stride, padding, bool(ceil_mode), ir.MaxPool2d)


def _pool(b, call, src, kernel, stride, padding, ceil_mode, cls):
    _, h, w = src.shape
    if ceil_mode and ((h + 2 * padding[0] - kernel[0]) % stride[0] or (w + 2 * padding[1] - kernel[1]) % stride[1]):
        raise UnsupportedOpError(f"{call.op} at {call.where}: ceil_mode=True changes the output size here; use ceil_mode=False")
    b.add(call, cls(name=b.name_for(call), inputs=(src.name,), kernel=kernel, stride=stride, padding=padding))


def h_avg_pool2d(b, call):
    x, kernel, stride, padding, ceil_mode, count_include_pad, divisor = (call.args + [None] * 7)[:7]
    folds = count_include_pad is not False  # zero padding is then the pool's own padding
    pre_pad = zero_padding(b, x) if folds else (0, 0)
    src = b.ref(call, x, fold_pad=folds)
    _need_rank(call, src, 3)
    kernel = _pair(kernel, call, "kernel_size")
    stride = kernel if stride in (None, []) else _pair(stride, call, "stride")
    padding = (0, 0) if padding is None else _pair(padding, call, "padding")
    padding = (padding[0] + pre_pad[0], padding[1] + pre_pad[1])
    if pre_pad != (0, 0) and (2 * padding[0] > kernel[0] or 2 * padding[1] > kernel[1]):
        raise UnsupportedOpError(f"avg_pool2d at {call.where}: the zero padding before it makes its padding {padding}, "
                                 f"more than half its {kernel} window; pad less or use a larger window")
    if divisor is not None:
        raise UnsupportedOpError(f"avg_pool2d at {call.where}: divisor_override is not supported")
    if padding != (0, 0) and count_include_pad is False:
        raise UnsupportedOpError(f"avg_pool2d at {call.where}: count_include_pad=False with padding is not supported")
    _pool(b, call, src, kernel, stride, padding, bool(ceil_mode), ir.AvgPool2d)


def _global_avg(b, call, src):
    _need_rank(call, src, 3)
    c, h, w = src.shape
    return b.add(call, ir.AvgPool2d(name=b.name_for(call), inputs=(src.name,), kernel=(h, w), stride=(h, w)))


def h_adaptive_avg_pool2d(b, call):
    src = b.ref(call, call.args[0])
    if _pair(call.args[1], call, "output_size") != (1, 1):
        raise UnsupportedOpError(f"adaptive_avg_pool2d at {call.where}: only output size 1 is supported, got {call.args[1]}")
    _global_avg(b, call, src)


def h_mean(b, call):
    src = b.ref(call, call.args[0])
    dims, keepdim = call.args[1], call.args[2]
    if not isinstance(dims, list) or sorted(d % 4 for d in dims) != [2, 3]:
        raise UnsupportedOpError(f"mean over dims {dims} at {call.where}: only the global spatial mean is supported")
    node = _global_avg(b, call, src)
    if not keepdim:
        b.add(call, ir.Flatten(name=b.name_for(call), inputs=(node.name,)))


def _flatten_to(b, call, src):
    b.add(call, ir.Flatten(name=b.name_for(call), inputs=(src.name,)))


def h_flatten(b, call):
    src = b.ref(call, call.args[0])
    start, end = int(call.args[1]), int(call.args[2])
    if start != 1 or end not in (-1, len(src.shape)):
        raise UnsupportedOpError(f"flatten({start}, {end}) at {call.where}: only flatten from dim 1 to the end is supported")
    _flatten_to(b, call, src)


def h_view(b, call):
    src = b.ref(call, call.args[0])
    shape = call.args[1]
    if isinstance(shape, list) and len(shape) == 2 and (shape[1] == -1 or shape[1] == int(np.prod(src.shape))):
        _flatten_to(b, call, src)
        return
    raise UnsupportedOpError(f"{call.op}({shape}) at {call.where}: only reshapes to (batch, -1) are supported")


def h_add(b, call):
    x, y = call.args[0], call.args[1]
    alpha = call.args[2] if len(call.args) > 2 else 1
    if not (isinstance(x, Ref) and isinstance(y, Ref)) or alpha not in (1, 1.0, None):
        raise UnsupportedOpError(
            f"add at {call.where}: only a residual add of two computed tensors is supported (not a constant or alpha)"
        )
    a, c = b.ref(call, x), b.ref(call, y)
    if a.shape != c.shape:
        raise UnsupportedOpError(f"add at {call.where}: shapes {a.shape} and {c.shape} differ (no broadcasting)")
    b.add(call, ir.Add(name=b.name_for(call), inputs=(a.name, c.name)))


HANDLERS: dict[str, Callable[[Builder, Call], None]] = {
    "conv2d": h_conv2d,
    "conv1d": h_conv2d,
    "_convolution": h_convolution,
    "linear": h_linear,
    "relu": h_relu,
    "relu6": h_relu6,
    "hardtanh": h_hardtanh,
    "leaky_relu": h_leaky_relu,
    "sigmoid": _lookup("sigmoid"),
    "tanh": _lookup("tanh"),
    "hardsigmoid": _lookup("hardsigmoid"),
    "hardswish": _lookup("hardswish"),
    "silu": _lookup("silu"),
    "cat": h_cat,
    "concat": h_cat,
    "upsample_nearest2d": h_upsample_nearest,
    "batch_norm": h_batch_norm,
    "_native_batch_norm_legit_no_training": h_native_bn_no_training,
    "getitem": h_getitem,
    "max_pool2d": h_max_pool2d,
    "max_pool1d": h_max_pool1d,
    "avg_pool1d": h_avg_pool1d,
    "adaptive_avg_pool1d": h_adaptive_avg_pool1d,
    "avg_pool2d": h_avg_pool2d,
    "adaptive_avg_pool2d": h_adaptive_avg_pool2d,
    "mean": h_mean,
    "flatten": h_flatten,
    "view": h_view,
    "reshape": h_view,
    "add": h_add,
    "dropout": h_identity,
    "feature_dropout": h_identity,
    "contiguous": h_identity,
    "clone": h_identity,
    "detach": h_identity,
    "alias": h_identity,
    "pad": h_pad,
    "constant_pad_nd": h_pad,
    "softmax": h_host_softmax,
    "_softmax": h_host_softmax,
    "log_softmax": h_host_softmax,
    "_log_softmax": h_host_softmax,
}


def build(loaded: LoadedModel, input_shape: tuple[int, ...]) -> tuple[list[ir.Node], Params, str, tuple[str, ...],
                                                                      dict[str, str]]:
    """Nodes, parameters, the output node, host ops, and which node computes each call output."""
    b = Builder(loaded, input_shape)
    for call in loaded.calls:
        handler = HANDLERS.get(call.op)
        if handler is None:
            raise UnsupportedOpError(
                f"unsupported op {call.op!r} at {call.where}; hwgen supports: {ir.SUPPORTED_LAYERS}"
            )
        handler(b, call)
    if loaded.output in b.pads:
        raise UnsupportedOpError("the model ends in zero padding; hwgen folds padding only into a following Conv or AvgPool")
    for op, output, where in b.host_ops:
        if output != loaded.output:
            raise UnsupportedOpError(f"{op} at {where} feeds further layers; hwgen supports a softmax only as the "
                                     "model's last op (left to the host, the accelerator returns the logits)")
    return (b.nodes, b.params, b.alias.get(loaded.output, loaded.output), tuple(op for op, _, _ in b.host_ops),
            dict(b.alias))


def _rename_inputs(nodes: list[ir.Node], old: str, new: str) -> list[ir.Node]:
    return [dataclasses.replace(n, inputs=tuple(new if i == old else i for i in n.inputs)) for n in nodes]


def fold_batchnorm(nodes: list[ir.Node], params: Params, output: str) -> tuple[list[ir.Node], str]:
    """Krishnamoorthi 2018 eq. (BN folding): w' = w * gamma/sigma, b' = beta + (b - mean) * gamma/sigma."""
    for bn_name in [n.name for n in nodes if isinstance(n, _BatchNorm)]:
        bn = next(n for n in nodes if n.name == bn_name)
        producer = next(n for n in nodes if n.name == bn.inputs[0])
        users = [n for n in nodes if producer.name in n.inputs]
        if not isinstance(producer, (ir.Conv2d, ir.Linear)) or len(users) != 1:
            raise UnsupportedOpError(
                f"BatchNorm {bn.name!r} follows {producer.op} {producer.name!r}; hwgen folds BatchNorm only into "
                "a Conv2d/Linear whose output feeds nothing else. Put the BatchNorm right after such a layer"
            )
        scale, shift = np.array(bn.scale), np.array(bn.shift)
        p = params[producer.name]
        p["weight"] = p["weight"] * scale.reshape((-1,) + (1,) * (p["weight"].ndim - 1))
        p["bias"] = p["bias"] * scale + shift
        nodes = [n for n in nodes if n.name != bn.name]
        nodes = _rename_inputs(nodes, bn.name, producer.name)
        output = producer.name if output == bn.name else output
    return nodes, output


def fuse_activations(nodes: list[ir.Node], output: str) -> tuple[list[ir.Node], str]:
    """A ReLU right after a Conv/Linear/Add/AvgPool becomes that op's fused activation (numerics step 4)."""
    for relu_name in [n.name for n in nodes if isinstance(n, ir.Relu)]:
        relu = next(n for n in nodes if n.name == relu_name)
        producer = next(n for n in nodes if n.name == relu.inputs[0])
        users = [n for n in nodes if producer.name in n.inputs]
        if getattr(producer, "activation", None) != "none" or len(users) != 1 or producer.name == output:
            continue
        fused = dataclasses.replace(producer, activation=relu.activation)
        nodes = [fused if n.name == producer.name else n for n in nodes if n.name != relu.name]
        nodes = _rename_inputs(nodes, relu.name, producer.name)
        output = producer.name if output == relu.name else output
    return nodes, output


def prune(nodes: list[ir.Node], output: str) -> list[ir.Node]:
    """Drop nodes the output does not depend on, so the output is the last node."""
    live = {output}
    for n in reversed(nodes):
        if n.name in live:
            live.update(n.inputs)
    kept = [n for n in nodes if n.name in live]
    out = next(n for n in kept if n.name == output)
    return [n for n in kept if n is not out] + [out]
