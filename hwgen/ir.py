"""Graph IR: the hand-off from the importer to every later stage.

Plain frozen dataclasses, no torch and no amaranth. Shapes exclude the batch
dimension; activations are channel-first (C, H, W) or flat (F,), the layout
torch uses, so Flatten needs no data movement.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import ClassVar

from .errors import HwgenError, PlanError
from .fixed import Activation

SCHEMA = "hwgen.graph"
SCHEMA_VERSION = 1
LUT_FUNCTIONS = ("sigmoid", "tanh", "hardsigmoid", "hardswish", "silu")


@dataclass(frozen=True, kw_only=True)
class Node:
    name: str
    inputs: tuple[str, ...] = ()
    shape: tuple[int, ...] = ()
    op: ClassVar[str] = "node"

    def __post_init__(self) -> None:
        act = getattr(self, "activation", None)
        if act is not None:
            try:
                Activation.parse(act)
            except PlanError as exc:
                raise HwgenError(f"graph: node {self.name!r}: {exc}") from None

    def to_json(self) -> dict:
        d = {"op": self.op}
        for f in fields(self):
            v = getattr(self, f.name)
            d[f.name] = list(v) if isinstance(v, tuple) else v
        return d


@dataclass(frozen=True, kw_only=True)
class Input(Node):
    op: ClassVar[str] = "input"


@dataclass(frozen=True, kw_only=True)
class Conv2d(Node):
    """Conv2d with dilation 1; groups == in_channels is depthwise. BN already folded."""

    in_channels: int
    out_channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1
    activation: str = "none"
    op: ClassVar[str] = "conv2d"

    @property
    def fan_in(self) -> int:
        return (self.in_channels // self.groups) * self.kernel[0] * self.kernel[1]

    @property
    def macs(self) -> int:
        return self.fan_in * self.shape[0] * self.shape[1] * self.shape[2]


@dataclass(frozen=True, kw_only=True)
class Linear(Node):
    in_features: int
    out_features: int
    activation: str = "none"
    op: ClassVar[str] = "linear"

    @property
    def fan_in(self) -> int:
        return self.in_features

    @property
    def macs(self) -> int:
        return self.in_features * self.out_features


@dataclass(frozen=True, kw_only=True)
class Relu(Node):
    """An activation (ReLU, ReLU6, LeakyReLU, Hardtanh) that could not be fused into the op before it."""

    activation: str = "relu"
    op: ClassVar[str] = "relu"


@dataclass(frozen=True, kw_only=True)
class MaxPool2d(Node):
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)
    op: ClassVar[str] = "maxpool2d"


@dataclass(frozen=True, kw_only=True)
class AvgPool2d(Node):
    """Average pool; AdaptiveAvgPool2d(1) becomes a window the size of the input."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)
    activation: str = "none"
    op: ClassVar[str] = "avgpool2d"

    @property
    def window(self) -> int:
        return self.kernel[0] * self.kernel[1]


@dataclass(frozen=True, kw_only=True)
class Flatten(Node):
    op: ClassVar[str] = "flatten"


@dataclass(frozen=True, kw_only=True)
class Add(Node):
    activation: str = "none"
    op: ClassVar[str] = "add"


@dataclass(frozen=True, kw_only=True)
class Concat(Node):
    """torch.cat along channels (dim 1): the inputs, each requantized to one format, one after another."""

    activation: str = "none"
    op: ClassVar[str] = "concat"


@dataclass(frozen=True, kw_only=True)
class Upsample(Node):
    """Nearest-neighbour upsampling by an integer factor in both spatial dims."""

    scale: int
    op: ClassVar[str] = "upsample"


@dataclass(frozen=True, kw_only=True)
class Lut(Node):
    """An elementwise function by table lookup (numerics: lookup tables); `function` in LUT_FUNCTIONS."""

    function: str
    op: ClassVar[str] = "lut"

    def __post_init__(self) -> None:
        if self.function not in LUT_FUNCTIONS:
            raise HwgenError(f"graph: node {self.name!r}: no table for {self.function!r}; tables: {LUT_FUNCTIONS}")


NODE_TYPES: dict[str, type[Node]] = {
    cls.op: cls for cls in (Input, Conv2d, Linear, Relu, MaxPool2d, AvgPool2d, Flatten, Add, Concat, Upsample, Lut)
}
SUPPORTED_LAYERS = (
    "Conv2d and Conv1d (dilation 1, any groups), Linear, ReLU, ReLU6, LeakyReLU, Hardtanh, "
    "Sigmoid, Tanh, Hardsigmoid, Hardswish, SiLU (lookup table), MaxPool2d/1d, AvgPool2d/1d, "
    "AdaptiveAvgPool2d/1d(1), BatchNorm1d/2d after Conv/Linear, Flatten, residual Add, torch.cat on channels, "
    "nearest Upsample (integer factor), Dropout (identity), "
    "symmetric zero padding (ZeroPad2d, F.pad) before a Conv or AvgPool (folded into it), "
    "a trailing Softmax/LogSoftmax (left to the host)"
)


def node_from_json(obj: dict) -> Node:
    obj = dict(obj)
    op = obj.pop("op", None)
    if op not in NODE_TYPES:
        raise HwgenError(f"graph: unknown op {op!r}; known ops: {sorted(NODE_TYPES)}")
    cls = NODE_TYPES[op]
    kwargs = {}
    for f in fields(cls):
        if f.name in obj:
            v = obj[f.name]
            kwargs[f.name] = tuple(v) if isinstance(v, list) else v
    return cls(**kwargs)


@dataclass(frozen=True)
class Graph:
    """Nodes in topological order; the first is the single Input, the last the output."""

    nodes: tuple[Node, ...]
    source: str = ""
    host_ops: tuple[str, ...] = ()  # trailing ops the host applies to the output (e.g. "softmax"), not the hardware
    schema: str = field(default=SCHEMA)
    version: int = field(default=SCHEMA_VERSION)

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for node in self.nodes:
            if node.name in seen:
                raise HwgenError(f"graph: duplicate node name {node.name!r}")
            missing = [i for i in node.inputs if i not in seen]
            if missing:
                raise HwgenError(f"graph: node {node.name!r} reads {missing} before they are computed")
            seen.add(node.name)
        if not self.nodes or not isinstance(self.nodes[0], Input):
            raise HwgenError("graph: the first node must be the input")

    @property
    def input(self) -> Input:
        return self.nodes[0]  # type: ignore[return-value]

    @property
    def output(self) -> Node:
        return self.nodes[-1]

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes if name in n.inputs]

    @property
    def compute_nodes(self) -> list[Node]:
        return [n for n in self.nodes if isinstance(n, (Conv2d, Linear))]

    def to_json(self) -> dict:
        return {
            "schema": self.schema,
            "version": self.version,
            "source": self.source,
            "host_ops": list(self.host_ops),
            "nodes": [n.to_json() for n in self.nodes],
        }

    @classmethod
    def from_json(cls, obj: dict) -> "Graph":
        if obj.get("schema") != SCHEMA or obj.get("version") != SCHEMA_VERSION:
            raise HwgenError(
                f"graph: expected schema {SCHEMA!r} version {SCHEMA_VERSION}, "
                f"got {obj.get('schema')!r} version {obj.get('version')!r}"
            )
        return cls(nodes=tuple(node_from_json(n) for n in obj["nodes"]), source=obj.get("source", ""),
                   host_ops=tuple(obj.get("host_ops", ())))

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1)


def conv_out_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1
