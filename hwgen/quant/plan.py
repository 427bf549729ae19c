"""The quantization plan: per-layer power-of-2 formats, editable JSON with a schema version.

The plan holds formats only; `quantize_params` turns it and the float
parameters into the integers every later stage uses, and computes the
accumulator bound that `validate` checks `acc_bits` against.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .. import ir, ops
from ..errors import PlanError
from ..fixed import Fixed, quantize_real
from ..ops import acc_frac, add_frac, pool_acc_frac  # noqa: F401  (re-exported: the plan's grid rules)
from ..ops.lookup import lut_table

SCHEMA = "hwgen.plan"
SCHEMA_VERSION = 1
MAX_ACC_BITS = 48  # the golden model's int64 and the fake-quant float64 stay exact below this


@dataclass(frozen=True)
class LayerPlan:
    name: str
    op: str
    out: Fixed
    weight: Fixed | None = None
    weight_channel_frac: tuple[int, ...] | None = None  # per-output-channel weight scales; None: per-tensor
    bias: Fixed | None = None
    bias_channel_frac: tuple[int, ...] | None = None
    acc_bits: int | None = None
    reciprocal: Fixed | None = None  # avg pool with a window that is not a power of 2
    reciprocal_value: int | None = None

    def weight_fracs(self, channels: int) -> np.ndarray:
        if self.weight_channel_frac is not None:
            return np.asarray(self.weight_channel_frac, dtype=np.int64)
        return np.full(channels, self.weight.frac, dtype=np.int64)

    def bias_fracs(self, channels: int) -> np.ndarray:
        if self.bias_channel_frac is not None:
            return np.asarray(self.bias_channel_frac, dtype=np.int64)
        return np.full(channels, self.bias.frac, dtype=np.int64)

    def to_json(self) -> dict:
        d: dict = {"name": self.name, "op": self.op, "out": self.out.to_json()}
        for key in ("weight", "bias", "reciprocal"):
            v = getattr(self, key)
            if v is not None:
                d[key] = v.to_json()
        for key in ("weight_channel_frac", "bias_channel_frac"):
            v = getattr(self, key)
            if v is not None:
                d[key] = list(v)
        for key in ("acc_bits", "reciprocal_value"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        return d

    @classmethod
    def from_json(cls, obj: dict) -> "LayerPlan":
        name = obj.get("name", "?")

        def fmt(key):
            if obj.get(key) is None:
                return None
            try:
                return Fixed.from_json(obj[key])
            except PlanError as exc:
                raise PlanError(f"plan layer {name!r} field {key!r}: {exc}") from None

        def ints(key):
            v = obj.get(key)
            if v is None:
                return None
            if not isinstance(v, list) or not all(isinstance(i, int) for i in v):
                raise PlanError(f"plan layer {name!r} field {key!r}: expected a list of integers, got {v!r}")
            return tuple(v)

        if "out" not in obj:
            raise PlanError(f"plan layer {name!r}: missing field 'out'")
        acc = obj.get("acc_bits")
        if acc is not None and not isinstance(acc, int):
            raise PlanError(f"plan layer {name!r} field 'acc_bits': expected an integer, got {acc!r}")
        return cls(name=name, op=obj.get("op", "?"), out=fmt("out"), weight=fmt("weight"),
                   weight_channel_frac=ints("weight_channel_frac"), bias=fmt("bias"),
                   bias_channel_frac=ints("bias_channel_frac"), acc_bits=acc,
                   reciprocal=fmt("reciprocal"), reciprocal_value=obj.get("reciprocal_value"))


@dataclass(frozen=True)
class QuantPlan:
    input: Fixed
    layers: tuple[LayerPlan, ...]
    method: str = "range"
    layout: str = "CHW"
    notes: tuple[str, ...] = ()
    schema: str = field(default=SCHEMA)
    version: int = field(default=SCHEMA_VERSION)

    def layer(self, name: str) -> LayerPlan:
        for lp in self.layers:
            if lp.name == name:
                return lp
        raise PlanError(f"plan has no layer {name!r}")

    def out_format(self, name: str) -> Fixed:
        """The format of a node's output (the graph input included)."""
        return self.input if name == "__input__" else self.layer(name).out

    def with_layer(self, lp: LayerPlan) -> "QuantPlan":
        return replace(self, layers=tuple(lp if x.name == lp.name else x for x in self.layers))

    def to_json(self) -> dict:
        return {"schema": self.schema, "version": self.version, "method": self.method, "layout": self.layout,
                "notes": list(self.notes), "input": self.input.to_json(), "layers": [lp.to_json() for lp in self.layers]}

    @classmethod
    def from_json(cls, obj: dict) -> "QuantPlan":
        if not isinstance(obj, dict) or obj.get("schema") != SCHEMA:
            raise PlanError(f"not a hwgen plan: expected \"schema\": {SCHEMA!r}")
        if obj.get("version") != SCHEMA_VERSION:
            raise PlanError(f"plan schema version {obj.get('version')!r} is not supported (this hwgen reads {SCHEMA_VERSION})")
        if obj.get("layout", "CHW") != "CHW":
            raise PlanError(f"plan field 'layout': only 'CHW' is supported, got {obj.get('layout')!r}")
        try:
            inp = Fixed.from_json(obj["input"])
        except KeyError:
            raise PlanError("plan: missing field 'input'") from None
        except PlanError as exc:
            raise PlanError(f"plan field 'input': {exc}") from None
        return cls(input=inp, layers=tuple(LayerPlan.from_json(lp) for lp in obj.get("layers", [])),
                   method=obj.get("method", "custom"), notes=tuple(obj.get("notes", [])))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "QuantPlan":
        try:
            obj = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise PlanError(f"cannot read plan {str(path)!r}: {exc}") from None
        return cls.from_json(obj)


@dataclass(frozen=True)
class QuantizedModel:
    """Graph + plan + integer parameters: everything the golden model and the RTL need."""

    graph: ir.Graph
    plan: QuantPlan
    weights: dict[str, np.ndarray]  # int64, torch layout (O, I/g, kh, kw) or (O, I)
    biases: dict[str, np.ndarray]   # int64, one per output channel, in each channel's bias format
    param_saturations: dict[str, int]
    tables: dict[str, np.ndarray] = field(default_factory=dict)  # lookup-table layers: int64 entries in out format

    def in_format(self, node: ir.Node, index: int = 0) -> Fixed:
        src = node.inputs[index]
        return self.plan.input if src == self.graph.input.name else self.plan.layer(src).out

    @property
    def weight_bits_total(self) -> int:
        return sum(self.weights[n].size * self.plan.layer(n).weight.bits for n in self.weights)

    @property
    def bias_bits_total(self) -> int:
        return sum(self.biases[n].size * self.plan.layer(n).bias.bits for n in self.biases)


def required_acc_bits(node: ir.Node, lp: LayerPlan, ins: list[Fixed], w_q=None, b_q=None) -> int:
    """The narrowest accumulator no input in the formats' ranges can overflow (numerics: accumulator width)."""
    return ops.rule(node).acc_bits(node, lp, ins, w_q, b_q)


def _check(cond: bool, layer: str, fld: str, msg: str) -> None:
    if not cond:
        raise PlanError(f"plan layer {layer!r} field {fld!r}: {msg}")


def quantize_params(graph: ir.Graph, params: dict, plan: QuantPlan) -> QuantizedModel:
    """Validate the plan against the graph, quantize parameters, fill in or check acc_bits."""
    names = [n.name for n in graph.nodes[1:]]
    planned = [lp.name for lp in plan.layers]
    if sorted(names) != sorted(planned):
        missing, extra = set(names) - set(planned), set(planned) - set(names)
        raise PlanError(f"plan does not match the model: missing layers {sorted(missing)}, unknown layers {sorted(extra)}")
    weights, biases, sats, tables = {}, {}, {}, {}
    layers = []
    for node in graph.nodes[1:]:
        lp = plan.layer(node.name)
        _check(lp.op == node.op, node.name, "op", f"is {lp.op!r} but the model has {node.op!r}")
        ins = [plan.input if i == graph.input.name else plan.layer(i).out for i in node.inputs]
        w_q = b_q = None
        if isinstance(node, (ir.Conv2d, ir.Linear)):
            _check(lp.weight is not None and lp.weight.signed, node.name, "weight", "needs a signed format")
            _check(lp.bias is not None and lp.bias.signed, node.name, "bias", "needs a signed format")
            p = params[node.name]
            ch = p["weight"].shape[0]
            for key in ("weight_channel_frac", "bias_channel_frac"):
                v = getattr(lp, key)
                _check(v is None or len(v) == ch, node.name, key, f"needs {ch} entries, got {None if v is None else len(v)}")
            wf = lp.weight_fracs(ch).reshape((-1,) + (1,) * (p["weight"].ndim - 1))
            w_q, ws = quantize_real(p["weight"], lp.weight, wf)
            b_q, bs = quantize_real(p["bias"], lp.bias, lp.bias_fracs(ch))
            af = acc_frac(lp, ins[0], ch)
            bad = np.nonzero(lp.bias_fracs(ch) > af)[0]
            _check(bad.size == 0, node.name, "bias",
                   f"frac {int(lp.bias_fracs(ch)[bad[0]]) if bad.size else 0} exceeds the accumulator's "
                   f"{int(af[bad[0]]) if bad.size else 0} fractional bits (weight.frac + input.frac), so the bias "
                   "shift would not be exact; lower bias.frac")
            weights[node.name], biases[node.name], sats[node.name] = w_q, b_q, ws + bs
        elif isinstance(node, ir.AvgPool2d):
            pow2 = node.window & (node.window - 1) == 0
            _check(pow2 or (lp.reciprocal is not None and lp.reciprocal_value is not None), node.name, "reciprocal",
                   f"window {node.window} is not a power of 2, so the plan must give the reciprocal's format and value")
        rule = ops.rule(node)
        if rule.passthrough:
            _check(lp.out == ins[0], node.name, "out", f"{node.op} does no arithmetic: out must equal its input format {ins[0].to_json()}")
        need = rule.acc_bits(node, lp, ins, w_q, b_q)
        if need:
            _check(need <= MAX_ACC_BITS, node.name, "acc_bits",
                   f"these formats need a {need}-bit accumulator; hwgen supports at most {MAX_ACC_BITS}: use fewer bits")
            if lp.acc_bits is None:
                lp = replace(lp, acc_bits=need)
            _check(1 <= lp.acc_bits <= MAX_ACC_BITS, node.name, "acc_bits", f"must be in 1..{MAX_ACC_BITS}, got {lp.acc_bits}")
            _check(lp.acc_bits >= need, node.name, "acc_bits",
                   f"{lp.acc_bits} bits is too narrow: the formats and weights can reach {need} bits")
        shifts = rule.shifts(node, lp, ins, 0 if w_q is None else w_q.shape[0])
        if shifts is not None:
            acc_bits = lp.acc_bits or max(f.bits + 1 for f in ins)
            _check(int(shifts.max()) <= 62 and acc_bits - int(shifts.min()) <= 63, node.name, "out",
                   f"frac {lp.out.frac} needs a requantization shift of {int(shifts.min())}..{int(shifts.max())}, out of range")
        if isinstance(node, ir.Lut):
            tables[node.name] = lut_table(node, ins[0], lp.out)
        layers.append(lp)
    plan = replace(plan, layers=tuple(layers))
    return QuantizedModel(graph, plan, weights, biases, sats, tables)
