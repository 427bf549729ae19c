"""The hardware plan: array size, widths, memory images and the layer program, all from the quant plan.

This is the hand-off between the numbers (QuantizedModel) and the RTL
(rtl_templates.accelerator). Everything the generated hardware needs is here
and serializes to JSON (schema "hwgen.hwplan"), so a build directory can be
re-simulated without the model.

Mapping of graph nodes onto the hardware (docs/accelerator.md):
- Conv2d / Linear: a GEMM on the systolic array (`mac`): M = output pixels on
  the array's rows, N = output channels of a group on its columns, K =
  fan-in streamed by the im2col address generator. Linear is a 1x1 "conv"
  on a 1x1 image.
- AvgPool2d: a depthwise `mac` whose weights all equal the reciprocal (1 for
  power-of-2 windows), so the golden model's sum * reciprocal is the same sum.
- MaxPool2d: the same window walk into the row-wise max unit (`max`).
- Add and a standalone ReLU: the element-wise unit (`eltwise`).
- Flatten: no hardware; CHW storage is already flat, so it aliases its input.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from . import ir
from .errors import HwgenError, PlanError
from .fixed import Fixed, relu6_ceiling, shift_bits, signed_bits_for
from .quant.plan import QuantizedModel, acc_frac, add_frac, pool_acc_frac

SCHEMA = "hwgen.hwplan"
SCHEMA_VERSION = 1
KINDS = ("input", "mac", "max", "eltwise", "output")
INPUT, MAC, MAX, ELTWISE, OUTPUT = range(len(KINDS))  # LayerOp.kind: which unit runs the entry


@dataclass(frozen=True)
class ArrayShape:
    rows: int
    cols: int

    @classmethod
    def parse(cls, text: str) -> "ArrayShape":
        try:
            r, c = (int(v) for v in text.lower().split("x"))
        except ValueError:
            raise HwgenError(f"array size must look like 4x4 (rows x cols), got {text!r}") from None
        if not (1 <= r <= 64 and 1 <= c <= 64):
            raise HwgenError(f"array size {text!r}: rows and cols must be in 1..64")
        return cls(r, c)

    def __str__(self) -> str:
        return f"{self.rows}x{self.cols}"


@dataclass(frozen=True)
class LayerOp:
    """One entry of the layer program the sequencer reads; every field is an integer in the descriptor ROM.

    Derived products (hw = h*w, k = cin_g*kh*kw, ...) are precomputed so the
    hardware walks addresses with adders and counters only.
    """

    kind: int
    trace_id: int               # index of the node in the graph (0 = input)
    n_out: int                  # values written (or streamed out) before the layer is done
    in_base: int = 0
    in2_base: int = 0
    out_base: int = 0
    # window walk (mac, max)
    h: int = 1
    w: int = 1
    hw: int = 1
    cin_g: int = 1
    kh: int = 1
    kw: int = 1
    k: int = 1
    sy: int = 1
    sx: int = 1
    py: int = 0
    px: int = 0
    ybase0: int = 0             # -py * w
    row_step: int = 0           # sy * w
    ow: int = 1
    m: int = 1                  # output pixels
    mtiles: int = 1             # ceil(m / rows): row tiles
    tiles_per_mt: int = 1       # groups * nt
    ohw: int = 1
    groups: int = 1
    group_in_step: int = 0      # cin_g * hw
    coutg: int = 1
    nt: int = 1                 # column tiles per group
    cols_last: int = 1          # valid columns in a group's last column tile
    nt_out_step: int = 0        # cols * ohw
    group_out_step: int = 0     # coutg * ohw
    pad_value: int = 0
    # weights and per-tile parameters (mac)
    w_base: int = 0
    w_words: int = 1            # memory words per tile
    w_code: int = 0             # index into HardwarePlan.weight_widths
    w_per_word: int = 1
    w_sub_last: int = 0         # w_per_word - 1
    p_base: int = 0
    # requantization (mac: per-column from the parameter memory; eltwise: here)
    relu: int = 0
    relu6: int = 0
    six: int = 0
    lo: int = 0
    hi: int = 0
    sa: int = 0
    sb: int = 0
    has_b: int = 0
    shift: int = 0

    @property
    def kind_name(self) -> str:
        return KINDS[self.kind]


@dataclass(frozen=True)
class TensorSlot:
    name: str
    base: int
    size: int
    shape: tuple[int, ...]
    fmt: Fixed


@dataclass(frozen=True)
class HardwarePlan:
    rows: int
    cols: int
    a_bits: int                  # multiplier activation operand width
    a_signed: bool
    w_bits: int                  # multiplier weight operand width (widest layer)
    acc_bits: int
    store_bits: int              # signed width of an activation memory word
    max_right: int
    max_left: int
    arena_depth: int
    weight_widths: tuple[int, ...]
    weight_words: tuple[int, ...]
    param_words: tuple[int, ...]
    program: tuple[LayerOp, ...]
    tensors: tuple[TensorSlot, ...]
    layer_names: tuple[str, ...]  # graph node names by trace id
    output_name: str              # the tensor slot the output stream reads
    macs: int
    schema: str = field(default=SCHEMA)
    version: int = field(default=SCHEMA_VERSION)

    @property
    def pes(self) -> int:
        return self.rows * self.cols

    @property
    def replicas(self) -> int:
        """Copies of the activation memory: one read port per array row, at least two for Add."""
        return max(self.rows, 2)

    @property
    def shift_bits(self) -> int:
        return shift_bits(self.max_right, self.max_left)

    @property
    def param_width(self) -> int:
        return self.cols * (self.acc_bits + self.shift_bits)

    @property
    def weight_word_width(self) -> int:
        return self.cols * self.w_bits

    def tensor(self, name: str) -> TensorSlot:
        for t in self.tensors:
            if t.name == name:
                return t
        raise HwgenError(f"hardware plan has no tensor {name!r}")

    @property
    def input(self) -> TensorSlot:
        return self.tensors[0]

    @property
    def output(self) -> TensorSlot:
        return self.tensor(self.output_name)

    def memory_bits(self) -> dict[str, int]:
        return {"activations": self.arena_depth * self.store_bits * self.replicas,
                "activation_arena": self.arena_depth * self.store_bits,
                "weights": len(self.weight_words) * self.weight_word_width,
                "params": len(self.param_words) * self.param_width,
                "program": len(self.program) * descriptor_width(self)}

    def to_json(self) -> dict:
        d = asdict(self)
        d["weight_words"] = [f"{w:x}" for w in self.weight_words]
        d["param_words"] = [f"{w:x}" for w in self.param_words]
        d["tensors"] = [{**asdict(t), "fmt": t.fmt.to_json()} for t in self.tensors]
        return d

    @classmethod
    def from_json(cls, obj: dict) -> "HardwarePlan":
        if obj.get("schema") != SCHEMA or obj.get("version") != SCHEMA_VERSION:
            raise PlanError(f"not a {SCHEMA} v{SCHEMA_VERSION} hardware plan")
        obj = dict(obj)
        obj["weight_words"] = tuple(int(w, 16) for w in obj["weight_words"])
        obj["param_words"] = tuple(int(w, 16) for w in obj["param_words"])
        obj["weight_widths"] = tuple(obj["weight_widths"])
        obj["program"] = tuple(LayerOp(**op) for op in obj["program"])
        obj["tensors"] = tuple(TensorSlot(t["name"], t["base"], t["size"], tuple(t["shape"]), Fixed.from_json(t["fmt"]))
                               for t in obj["tensors"])
        obj["layer_names"] = tuple(obj["layer_names"])
        return cls(**obj)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json()) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "HardwarePlan":
        return cls.from_json(json.loads(Path(path).read_text()))


def descriptor_fields(hw: HardwarePlan) -> list[tuple[str, int]]:
    """(field, signed width) of the descriptor ROM: each field as wide as its widest value."""
    out = []
    for f in fields(LayerOp):
        peak = max(abs(getattr(op, f.name)) for op in hw.program)
        out.append((f.name, signed_bits_for(peak)))
    return out


def descriptor_width(hw: HardwarePlan) -> int:
    return sum(w for _, w in descriptor_fields(hw))


def descriptor_words(hw: HardwarePlan) -> list[int]:
    """The program ROM image: every LayerOp packed field by field, first field in the low bits."""
    layout = descriptor_fields(hw)
    words = []
    for op in hw.program:
        word, pos = 0, 0
        for name, width in layout:
            word |= (getattr(op, name) & ((1 << width) - 1)) << pos
            pos += width
        words.append(word)
    return words


# --- memory allocation ---------------------------------------------------------------------------

def _allocate(sizes: list[tuple[str, int]], last_use: dict[str, int]) -> tuple[dict[str, int], int]:
    """First-fit arena allocation in program order; a tensor is freed after its last reader ran."""
    live: list[tuple[int, int, str]] = []  # (base, size, name)
    bases: dict[str, int] = {}
    depth = 0
    for step, (name, size) in enumerate(sizes):
        live = [t for t in live if last_use[t[2]] >= step]
        live.sort()
        base = 0
        for b, s, _ in live:
            if base + size <= b:
                break
            base = max(base, b + s)
        bases[name] = base
        live.append((base, size, name))
        depth = max(depth, base + size)
    return bases, depth


# --- the plan ------------------------------------------------------------------------------------

def _store_bits(fmts: list[Fixed]) -> int:
    return max(f.bits + (0 if f.signed else 1) for f in fmts)


def _weight_layout(qm: QuantizedModel, node: ir.Node) -> tuple[np.ndarray, int]:
    """(weights as (out channels, K) int64, signed width) for a node run on the array."""
    if isinstance(node, (ir.Conv2d, ir.Linear)):
        w = qm.weights[node.name]
        return w.reshape(w.shape[0], -1), qm.plan.layer(node.name).weight.bits
    assert isinstance(node, ir.AvgPool2d)
    value = qm.plan.layer(node.name).reciprocal_value or 1
    return np.full((node.shape[0], node.window), value, dtype=np.int64), signed_bits_for(value)


def make_hardware_plan(qm: QuantizedModel, array: ArrayShape) -> HardwarePlan:
    graph, plan = qm.graph, qm.plan
    rows, cols = array.rows, array.cols
    names = [n.name for n in graph.nodes]
    alias = {n.name: n.inputs[0] for n in graph.nodes if isinstance(n, ir.Flatten)}

    def storage(name: str) -> str:
        while name in alias:
            name = alias[name]
        return name

    stored = [n for n in graph.nodes if n.name not in alias]
    step_of = {n.name: i for i, n in enumerate(stored)}
    last_use = {n.name: step_of[n.name] for n in stored}
    for n in graph.nodes:
        if n.name in alias:
            continue
        for src in n.inputs:
            last_use[storage(src)] = max(last_use[storage(src)], step_of[n.name])
    last_use[storage(graph.output.name)] = len(stored)
    sizes = [(n.name, int(np.prod(n.shape))) for n in stored]
    bases, depth = _allocate(sizes, last_use)

    fmt = {graph.input.name: plan.input, **{lp.name: lp.out for lp in plan.layers}}
    tensors = [TensorSlot(n.name, bases[n.name], int(np.prod(n.shape)), tuple(n.shape), fmt[n.name]) for n in stored]
    store_bits = _store_bits(list(fmt.values()))

    on_array = [n for n in graph.nodes if isinstance(n, (ir.Conv2d, ir.Linear, ir.AvgPool2d))]
    layouts = {n.name: _weight_layout(qm, n) for n in on_array}
    weight_widths = tuple(sorted({width for _, width in layouts.values()})) or (2,)
    w_bits = max(weight_widths)
    a_fmts = [qm.in_format(n) for n in on_array] or [plan.input]
    a_signed = any(f.signed for f in a_fmts)
    a_bits = max(f.bits + (1 if a_signed and not f.signed else 0) for f in a_fmts)
    acc_bits = max([plan.layer(n.name).acc_bits for n in graph.nodes[1:] if plan.layer(n.name).acc_bits] + [2])
    # the eltwise unit shares the requantizer widths; its shifted operands must fit too
    acc_bits = max(acc_bits, store_bits + 1)

    program: list[LayerOp] = []
    weight_words: list[int] = []
    param_entries: list[tuple[list[int], list[int]]] = []  # (biases, shifts) per tile, packed at the end
    shifts: list[int] = [0]
    out_store = {n.name: bases[storage(n.name)] for n in graph.nodes}

    def requant_fields(out: Fixed, activation: str) -> dict:
        six = min(relu6_ceiling(out), out.max + 1) if activation == "relu6" else 0
        return {"relu": int(activation == "relu"), "relu6": int(activation == "relu6"), "six": six,
                "lo": out.min, "hi": out.max}

    program.append(LayerOp(kind=INPUT, trace_id=0, n_out=tensors[0].size, out_base=bases[graph.input.name]))
    for idx, node in enumerate(graph.nodes):
        if idx == 0 or node.name in alias:
            continue
        lp = plan.layer(node.name)
        src = node.inputs[0]
        in_fmt = qm.in_format(node)
        base = {"trace_id": idx, "n_out": int(np.prod(node.shape)), "in_base": out_store[src],
                "out_base": bases[node.name]}
        if isinstance(node, (ir.Conv2d, ir.Linear, ir.AvgPool2d, ir.MaxPool2d)):
            if isinstance(node, ir.Linear):
                c, h, w = node.in_features, 1, 1
                kh = kw = sy = sx = 1
                py = px = 0
                oh = ow = 1
            else:
                c, h, w = graph.node(src).shape
                (kh, kw), (sy, sx), (py, px) = node.kernel, node.stride, node.padding
                oh, ow = node.shape[1], node.shape[2]
            if isinstance(node, ir.Conv2d):
                groups = node.groups
            elif isinstance(node, ir.Linear):
                groups = 1
            else:
                groups = c
            cin_g = c // groups
            cout = node.shape[0]
            coutg = cout // groups
            nt = -(-coutg // cols)
            walk = dict(h=h, w=w, hw=h * w, cin_g=cin_g, kh=kh, kw=kw, k=cin_g * kh * kw, sy=sy, sx=sx, py=py, px=px,
                        ybase0=-py * w, row_step=sy * w, ow=ow, m=oh * ow, ohw=oh * ow, groups=groups,
                        group_in_step=cin_g * h * w, coutg=coutg, nt=nt, cols_last=coutg - (nt - 1) * cols,
                        nt_out_step=cols * oh * ow, group_out_step=coutg * oh * ow,
                        mtiles=-(-(oh * ow) // rows), tiles_per_mt=groups * nt)
            if isinstance(node, ir.MaxPool2d):
                program.append(LayerOp(kind=MAX, pad_value=in_fmt.min, **base, **walk))
                continue
            wmat, wbits = layouts[node.name]
            code = weight_widths.index(wbits)
            per_word = w_bits // wbits
            k = walk["k"]
            words = -(-k // per_word)
            w_base, p_base = len(weight_words), len(param_entries)
            if isinstance(node, ir.AvgPool2d):
                af = np.full(cout, pool_acc_frac(node, lp, in_fmt))
                bias_acc = np.zeros(cout, dtype=np.int64)
            else:
                af = acc_frac(lp, in_fmt, cout)
                bias_acc = qm.biases[node.name] << (af - lp.bias_fracs(cout))
            shift = af - lp.out.frac
            shifts += [int(s) for s in shift]
            mask = (1 << wbits) - 1
            for g in range(groups):
                for t in range(nt):
                    chans = [g * coutg + t * cols + j for j in range(cols)]
                    for word_i in range(words):
                        word = 0
                        for j, ch in enumerate(chans):
                            if ch >= (g + 1) * coutg:
                                continue
                            for s in range(per_word):
                                kk = word_i * per_word + s
                                if kk < k:
                                    word |= (int(wmat[ch, kk]) & mask) << (j * w_bits + s * wbits)
                        weight_words.append(word)
                    param_entries.append(([int(bias_acc[ch]) if ch < (g + 1) * coutg else 0 for ch in chans],
                                          [int(shift[ch]) if ch < (g + 1) * coutg else 0 for ch in chans]))
            program.append(LayerOp(kind=MAC, w_base=w_base, w_words=words, w_code=code, w_per_word=per_word,
                                   w_sub_last=per_word - 1, p_base=p_base,
                                   **requant_fields(lp.out, node.activation), **base, **walk))
        elif isinstance(node, ir.Add):
            fa, fb = qm.in_format(node, 0), qm.in_format(node, 1)
            f = add_frac(fa, fb)
            sa, sb = f - fa.frac, f - fb.frac
            shifts.append(f - lp.out.frac)
            program.append(LayerOp(kind=ELTWISE, in2_base=out_store[node.inputs[1]], sa=sa, sb=sb, has_b=1,
                                   shift=f - lp.out.frac, **requant_fields(lp.out, node.activation), **base))
        elif isinstance(node, ir.Relu):
            program.append(LayerOp(kind=ELTWISE, **requant_fields(lp.out, node.activation), **base))
        else:
            raise HwgenError(f"hardware: no mapping for layer {node.name!r} ({node.op})")
    out_name = storage(graph.output.name)
    out_slot = next(t for t in tensors if t.name == out_name)
    program.append(LayerOp(kind=OUTPUT, trace_id=names.index(graph.output.name), n_out=out_slot.size, in_base=out_slot.base))
    max_right, max_left = max(max(shifts), 0), max(-min(shifts), 0)
    shift_width = shift_bits(max_right, max_left)
    return HardwarePlan(
        rows=rows, cols=cols, a_bits=a_bits, a_signed=a_signed, w_bits=w_bits, acc_bits=acc_bits,
        store_bits=store_bits, max_right=max_right, max_left=max_left,
        arena_depth=depth, weight_widths=weight_widths, weight_words=tuple(weight_words) or (0,),
        param_words=tuple(_pack_params(b, s, acc_bits, shift_width) for b, s in param_entries) or (0,),
        program=tuple(program), tensors=tuple(tensors), layer_names=tuple(names), output_name=out_name,
        macs=sum(getattr(n, "macs", 0) for n in graph.nodes))


def _pack_params(bias: list[int], shift: list[int], acc_bits: int, shift_width: int) -> int:
    """Parameter memory word: per-column biases (low bits) then per-column shifts, the engine's layout."""
    word, pos = 0, 0
    for b in bias:
        word |= (b & ((1 << acc_bits) - 1)) << pos
        pos += acc_bits
    for s in shift:
        word |= (s & ((1 << shift_width) - 1)) << pos
        pos += shift_width
    return word


def estimate_cycles(hw: HardwarePlan) -> list[dict]:
    """Per program entry: MACs, ideal cycles (MACs / PEs) and a first-order cycle estimate.

    mac: each row tile loads `rows` window origins, then every tile holds the
    array for max(K, rows + cols - 1, writes) cycles (writes: one activation
    write per cycle for its rows x valid-columns results). max: one window
    beat per k-step, then one cycle per output pixel of the tile to write it.
    eltwise/input/output: one value per cycle. 3 cycles per layer to fetch its
    descriptor. The simulation measures the real numbers (`hwgen sim`).
    """
    out = []
    rows, cols = hw.rows, hw.cols
    for op in hw.program:
        name = "(output stream)" if op.kind == OUTPUT else hw.layer_names[op.trace_id]
        macs = 0
        if op.kind == MAC:
            macs = op.m * op.groups * op.coutg * op.k
            per_tile = []
            for t in range(op.nt):
                valid_cols = cols if t < op.nt - 1 else op.cols_last
                per_tile.append(max(op.k, rows + cols - 1, min(rows, op.m) * valid_cols))
            cycles = op.mtiles * (rows + op.groups * sum(per_tile)) + rows + cols + 4
        elif op.kind == MAX:
            cycles = op.mtiles * (rows + op.groups * (op.k + min(rows, op.m))) + 4
        else:
            cycles = op.n_out + 2
        out.append({"layer": name, "kind": KINDS[op.kind], "macs": macs, "ideal": macs / hw.pes,
                    "estimate": cycles + 3})
    return out
