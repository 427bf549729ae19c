"""Lowering pass: graph nodes -> layer program entries (LayerOp), with the datapath widths they need.

Conv2d / Linear run on the systolic array (`mac`): M = output pixels on the
array's rows, N = output channels of a group on its columns, K = fan-in
streamed by the window walker; Linear is a 1x1 conv on a 1x1 image.
AvgPool2d is a depthwise `mac` (see packing.weight_matrix; a global one walks its
channels as output pixels, see walk_fields). MaxPool2d walks the
same windows into the max unit (`max`). The element-wise unit (`eltwise`) runs
Add, a standalone activation, nearest Upsample (its repeating read walk), a
lookup table, and Concat as one copy per input, each written at its offset
(none where its producers wrote it in place: allocation's views).
Flatten aliases its input (allocation). Which unit an op uses is its rule's
`unit` (hwgen.ops).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import ir, ops
from ..errors import HwgenError
from ..fixed import Activation, Fixed
from ..ops.lookup import index_shift
from ..quant.plan import QuantizedModel, acc_frac, add_frac, pool_acc_frac
from .allocation import ArenaLayout
from .cycles import mac_cycles
from .model import ELTWISE, INPUT, MAC, MAX, OUTPUT, LayerOp
from .packing import pack_weights, tile_params, weight_matrix



@dataclass(frozen=True)
class Datapath:
    """Operand and storage widths shared by every layer: the widest any layer needs."""
    a_bits: int                       # multiplier activation operand
    a_signed: bool
    w_bits: int                       # multiplier weight operand (lane width of a weight word)
    weight_widths: tuple[int, ...]    # the distinct layer weight widths (w_code indexes this)
    acc_bits: int
    store_bits: int                   # signed width of an activation memory word


def datapath(qm: QuantizedModel) -> Datapath:
    graph, plan = qm.graph, qm.plan
    fmts = [plan.input, *(lp.out for lp in plan.layers)]
    store_bits = max(f.bits + (0 if f.signed else 1) for f in fmts)
    on_array = [n for n in graph.nodes if ops.rule(n).unit == "array"]
    weight_widths = tuple(sorted({weight_matrix(qm, n)[1] for n in on_array})) or (2,)
    a_fmts = [qm.in_format(n) for n in on_array] or [plan.input]
    a_signed = any(f.signed for f in a_fmts)
    a_bits = max(f.bits + (1 if a_signed and not f.signed else 0) for f in a_fmts)
    acc_bits = max([plan.layer(n.name).acc_bits for n in graph.nodes[1:] if plan.layer(n.name).acc_bits] + [2])
    # the eltwise unit shares the requantizer widths; its shifted operands must fit too
    acc_bits = max(acc_bits, store_bits + 1)
    return Datapath(a_bits, a_signed, max(weight_widths), weight_widths, acc_bits, store_bits)


@dataclass
class Program:
    """What lowering accumulates: the entries, the weight words, the per-tile parameters and every shift used."""
    ops: list[LayerOp]
    weight_words: list[int]
    param_entries: list[tuple[list[int], list[int]]]
    shifts: list[int]
    lut_words: list[int]

    def requant(self, shifts, fields: dict) -> None:
        """Record the shifts a requantizer will see, a leaky activation's larger ones on negative sums included."""
        self.shifts += [int(s) for s in shifts] + [int(s) + fields["neg_shift"] for s in shifts]


def requant_fields(out: Fixed, activation: str) -> dict:
    """The requantizer's per-layer inputs: the activation's clamp (one step outside the format where it has no
    bound), its leaky shift, and the format's range."""
    act = Activation.parse(activation)
    clamp_lo, clamp_hi = act.bounds(out)
    return {"neg_shift": act.neg_shift, "clamp_lo": out.min - 1 if clamp_lo is None else clamp_lo,
            "clamp_hi": out.max + 1 if clamp_hi is None else clamp_hi, "lo": out.min, "hi": out.max}


def global_pool(graph: ir.Graph, node: ir.Node) -> bool:
    """An average pool whose one window covers each whole channel (AdaptiveAvgPool2d(1) and the like)."""
    if not isinstance(node, ir.AvgPool2d):
        return False
    _, h, w = graph.node(node.inputs[0]).shape
    return node.shape[1:] == (1, 1) and tuple(node.kernel) == (h, w) and tuple(node.padding) == (0, 0)


def walk_fields(graph: ir.Graph, node: ir.Node, rows: int, cols: int, unroll: int = 1) -> dict:
    """The window walk of a windowed node, with every derived product precomputed for the counters.

    A global average pool walks its input as one channel of C rows of H*W
    values, a window one row long: the C output values are output pixels, so
    they spread over the array's rows (as a depthwise pool they would take
    one column, one after the other). CHW storage makes both walks the same
    addresses.

    `unroll` > 1 (a depthwise conv, see `unroll_for`): each array row computes
    `unroll` neighbouring output pixels of its channel, one per column, so the
    walk is that of a conv whose window is `unroll - 1` strides wider and
    whose stride is `unroll` strides: its output pixels are the row segments.
    """
    cout = node.shape[0]
    if isinstance(node, ir.Linear):
        c, h, w = node.in_features, 1, 1
        (kh, kw), (sy, sx), (py, px), (oh, ow) = (1, 1), (1, 1), (0, 0), (1, 1)
    elif global_pool(graph, node):
        channels, h, w = graph.node(node.inputs[0]).shape
        c, cout, h, w = 1, 1, channels, h * w
        (kh, kw), (sy, sx), (py, px), (oh, ow) = (1, w), (1, 1), (0, 0), (channels, 1)
    else:
        c, h, w = graph.node(node.inputs[0]).shape
        (kh, kw), (sy, sx), (py, px) = node.kernel, node.stride, node.padding
        oh, ow = node.shape[1], node.shape[2]
    # a pool is depthwise (one group per channel); a global one walks a single channel
    groups = node.groups if isinstance(node, ir.Conv2d) else 1 if isinstance(node, ir.Linear) else c
    cin_g, coutg = c // groups, cout // groups
    nt = -(-coutg // cols)
    ohw, cols_last, tail = oh * ow, coutg - (nt - 1) * cols, 1
    if unroll > 1:  # the row segments: ceil(ow / unroll) per output row, the last one `tail` pixels
        assert cin_g == coutg == 1 and unroll <= min(cols, ow), (node.name, unroll)
        segments = -(-ow // unroll)
        kw, sx, ow, cols_last, tail = kw + (unroll - 1) * sx, unroll * sx, segments, unroll, ow - (segments - 1) * unroll
    return dict(h=h, w=w, hw=h * w, cin_g=cin_g, kh=kh, kw=kw, k=cin_g * kh * kw, sy=sy, sx=sx, py=py, px=px,
                ybase0=-py * w, row_step=sy * w, ow=ow, m=oh * ow, ohw=ohw, groups=groups,
                group_in_step=cin_g * h * w, coutg=coutg, nt=nt, cols_last=cols_last,
                nt_out_step=cols * ohw, group_out_step=coutg * ohw,
                mtiles=-(-(oh * ow) // rows), tiles_per_mt=groups * nt, unroll=unroll, tail=tail)


def unroll_for(graph: ir.Graph, node: ir.Node, rows: int, cols: int, lanes: int) -> int:
    """The columns a depthwise conv spreads its output rows over: the fewest estimated cycles (1: one column per
    channel, bound by the array's rows + cols - 1 tile period and by one read per row for one output)."""
    if not (isinstance(node, ir.Conv2d) and node.groups > 1 and node.groups == node.shape[0]
            and node.groups == graph.node(node.inputs[0]).shape[0]):
        return 1
    candidates = range(1, min(cols, node.shape[2]) + 1)
    return min(candidates, key=lambda v: (mac_cycles(LayerOp(kind=MAC, trace_id=0, n_out=0,
                                                             **walk_fields(graph, node, rows, cols, v)),
                                                     rows, cols, lanes), v))


def _lower_mac(qm: QuantizedModel, node: ir.Node, dp: Datapath, rows: int, cols: int, common: dict,
               prog: Program, lanes: int, unroll: bool) -> None:
    lp, in_fmt = qm.plan.layer(node.name), qm.in_format(node)
    walk = walk_fields(qm.graph, node, rows, cols, unroll_for(qm.graph, node, rows, cols, lanes) if unroll else 1)
    wmat, wbits = weight_matrix(qm, node)
    per_word = dp.w_bits // wbits
    cout = node.shape[0]
    if isinstance(node, ir.AvgPool2d):
        af = np.full(cout, pool_acc_frac(node, lp, in_fmt))
        bias_acc = np.zeros(cout, dtype=np.int64)
    else:
        af = acc_frac(lp, in_fmt, cout)
        bias_acc = qm.biases[node.name] << (af - lp.bias_fracs(cout))
    shift = af - lp.out.frac
    rq = requant_fields(lp.out, node.activation)
    hold = isinstance(node, ir.AvgPool2d)  # every weight is the reciprocal: one word per tile, read at every k-step
    op = LayerOp(kind=MAC, w_base=len(prog.weight_words), w_words=1 if hold else -(-walk["k"] // per_word),
                 w_code=dp.weight_widths.index(wbits), w_per_word=per_word, w_sub_last=per_word - 1, w_hold=int(hold),
                 p_base=len(prog.param_entries), **rq, **common, **walk)
    prog.requant(shift, rq)
    prog.weight_words += pack_weights(op, wmat, wbits, dp.w_bits, cols)
    prog.param_entries += tile_params(op, bias_acc, shift, cols)
    prog.ops.append(op)


def _lower_add(qm: QuantizedModel, node: ir.Add, layout: ArenaLayout, common: dict, prog: Program, pairs: int) -> None:
    lp = qm.plan.layer(node.name)
    fa, fb = qm.in_format(node, 0), qm.in_format(node, 1)
    f = add_frac(fa, fb)
    rq = requant_fields(lp.out, node.activation)
    prog.requant([f - lp.out.frac], rq)
    prog.ops.append(LayerOp(kind=ELTWISE, in2_base=layout.base(node.inputs[1]), sa=f - fa.frac, sb=f - fb.frac,
                            has_b=1, shift=f - lp.out.frac, pairs=pairs, **rq, **common))


def _lower_activation(qm: QuantizedModel, node: ir.Relu, common: dict, prog: Program, pairs: int) -> None:
    lp = qm.plan.layer(node.name)
    rq = requant_fields(lp.out, node.activation)
    shift = qm.in_format(node).frac - lp.out.frac
    prog.requant([shift], rq)
    prog.ops.append(LayerOp(kind=ELTWISE, shift=shift, pairs=pairs, **rq, **common))


def _lower_concat(qm: QuantizedModel, node: ir.Concat, layout: ArenaLayout, common: dict, prog: Program,
                  pairs: int) -> None:
    """One copy per input, requantized to the output format and written after the inputs before it."""
    lp = qm.plan.layer(node.name)
    rq = requant_fields(lp.out, node.activation)
    offset = 0
    for k, src in enumerate(node.inputs):
        size = int(np.prod(qm.graph.node(src).shape))
        shift = qm.in_format(node, k).frac - lp.out.frac
        prog.requant([shift], rq)
        prog.ops.append(LayerOp(kind=ELTWISE, shift=shift, out_off=offset, pairs=pairs, **rq,
                                **{**common, "n_out": size, "in_base": layout.base(src)}))
        offset += size


def _lower_upsample(qm: QuantizedModel, node: ir.Upsample, common: dict, prog: Program) -> None:
    fmt = qm.in_format(node)
    prog.ops.append(LayerOp(kind=ELTWISE, up=node.scale, w=qm.graph.node(node.inputs[0]).shape[2],
                            **requant_fields(fmt, "none"), **common))


def _lower_lut(qm: QuantizedModel, node: ir.Lut, common: dict, prog: Program) -> None:
    """The table goes to the table memory; the unit reads entry (x >> lut_shift) - (in.min >> lut_shift)."""
    fin, table = qm.in_format(node), qm.tables[node.name]
    k = index_shift(fin)
    base = len(prog.lut_words) - (fin.min >> k)
    prog.lut_words += [int(v) for v in table]
    prog.ops.append(LayerOp(kind=ELTWISE, lut=1, lut_base=base, lut_shift=k,
                            **requant_fields(qm.plan.layer(node.name).out, "none"), **common))


def lower(qm: QuantizedModel, layout: ArenaLayout, dp: Datapath, rows: int, cols: int, lanes: int = 2,
          unroll: bool = True) -> Program:
    """The program for an arena of `lanes` write lanes: with two or more, the element-wise entries that can take
    two values per cycle do; `unroll`: depthwise convs may spread their output rows over the columns
    (`unroll_for`, by the cycle model at `lanes`)."""
    pairs = lanes >= 2
    graph = qm.graph
    prog = Program([], [], [], [0], [])
    prog.ops.append(LayerOp(kind=INPUT, trace_id=0, n_out=int(np.prod(graph.input.shape)),
                            out_base=layout.base(graph.input.name)))
    for idx, node in enumerate(graph.nodes):
        if idx == 0 or node.name in layout.alias or layout.in_place(node.name):
            continue
        common = {"trace_id": idx, "n_out": int(np.prod(node.shape)), "in_base": layout.base(node.inputs[0]),
                  "out_base": layout.bases[node.name]}
        unit = ops.rule(node).unit
        if unit == "max":
            prog.ops.append(LayerOp(kind=MAX, pad_value=qm.in_format(node).min, **common,
                                    **walk_fields(graph, node, rows, cols)))
        elif unit == "array":
            _lower_mac(qm, node, dp, rows, cols, common, prog, lanes, unroll)
        elif isinstance(node, ir.Add):
            _lower_add(qm, node, layout, common, prog, int(pairs))
        elif isinstance(node, ir.Relu):
            _lower_activation(qm, node, common, prog, int(pairs))
        elif isinstance(node, ir.Concat):
            _lower_concat(qm, node, layout, common, prog, int(pairs))
        elif isinstance(node, ir.Upsample):
            _lower_upsample(qm, node, common, prog)
        elif isinstance(node, ir.Lut):
            _lower_lut(qm, node, common, prog)
        else:
            raise HwgenError(f"hardware: no mapping for layer {node.name!r} ({node.op})")
    out_name = layout.storage(graph.output.name)
    prog.ops.append(LayerOp(kind=OUTPUT, trace_id=[n.name for n in graph.nodes].index(graph.output.name),
                            n_out=int(np.prod(graph.node(out_name).shape)), in_base=layout.bases[out_name]))
    return prog
