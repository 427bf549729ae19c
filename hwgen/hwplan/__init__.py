"""The hardware plan: array, widths, memory images and the layer program, all from the quant plan.

The hand-off between the numbers (QuantizedModel) and the RTL
(rtl_templates.accelerator); it serializes to JSON (schema "hwgen.hwplan"), so a
build directory can be re-simulated without the model. Made by small passes,
each its own module (docs/accelerator.md):

    allocation  where each tensor lives in the activation arena
    lowering    graph nodes -> layer program entries, datapath widths
    packing     weight / parameter words in the loop nest's tile order
    encoding    the program as descriptor ROM words
    loopnest    the executable model of the tile loop nest (packing, cycles, tests)
    cycles      the cycle model
"""
from __future__ import annotations

import numpy as np

from ..fixed import shift_bits
from ..quant.plan import QuantizedModel
from .allocation import allocate
from .cycles import LayerCycles, estimate_cycles
from .encoding import descriptor_fields, descriptor_width, descriptor_words
from .lowering import datapath, lower
from .model import (ELTWISE, INPUT, KINDS, MAC, MAX, OUTPUT, READ_LATENCIES, SCHEMA, SCHEMA_VERSION, SPRAM_WIDTH,
                    SPRAM_WORDS, ArrayShape, HardwarePlan, LayerOp, TensorSlot)
from .packing import pack_param_word

__all__ = ["ELTWISE", "INPUT", "KINDS", "MAC", "MAX", "OUTPUT", "SCHEMA", "SCHEMA_VERSION", "ArrayShape",
           "HardwarePlan", "LayerCycles", "LayerOp", "TensorSlot", "descriptor_fields", "descriptor_width",
           "descriptor_words", "estimate_cycles", "make_hardware_plan"]


def make_hardware_plan(qm: QuantizedModel, array: ArrayShape, write_lanes: int = 2,
                       product_stages: int = 2, read_latency: int = READ_LATENCIES[0],
                       unroll: bool = True, arena_spram: bool = False, weights_spram: bool = False) -> HardwarePlan:
    """`unroll`: depthwise convs may spread their output rows over the array's columns (fewer cycles, more weight
    words: hwplan.lowering.unroll_for). `arena_spram`: the arena banked for single-ported SPRAMs (one lane;
    allocation.BankingError where the graph has no such arena). `weights_spram`: the weight memory in SPRAM,
    loaded at start (HardwarePlan.weight_image)."""
    if write_lanes not in (1, 2, 4):
        raise ValueError(f"write_lanes must be 1, 2 or 4, got {write_lanes!r}")
    if product_stages not in (2, 3):
        raise ValueError(f"product_stages must be 2 or 3, got {product_stages!r}")
    if read_latency not in READ_LATENCIES:
        raise ValueError(f"read_latency must be one of {READ_LATENCIES}, got {read_latency!r}")
    graph, plan = qm.graph, qm.plan
    fmt = {graph.input.name: plan.input, **{lp.name: lp.out for lp in plan.layers}}
    dp = datapath(qm)
    if arena_spram and write_lanes != 1:
        raise ValueError("an arena in SPRAM takes one write lane")
    if arena_spram and dp.store_bits > SPRAM_WIDTH:
        raise ValueError(f"an arena in SPRAM holds words of at most {SPRAM_WIDTH} bits, not {dp.store_bits}")
    layout = allocate(graph, fmt.__getitem__, SPRAM_WORDS if arena_spram else None)
    prog = lower(qm, layout, dp, array.rows, array.cols, lanes=write_lanes, unroll=unroll)
    tensors = tuple(TensorSlot(name, base, int(np.prod(graph.node(name).shape)), tuple(graph.node(name).shape),
                               fmt[name])
                    for name, base in layout.bases.items())
    max_right, max_left = max(max(prog.shifts), 0), max(-min(prog.shifts), 0)
    shift_width = shift_bits(max_right, max_left)
    return HardwarePlan(
        rows=array.rows, cols=array.cols, a_bits=dp.a_bits, a_signed=dp.a_signed, w_bits=dp.w_bits,
        acc_bits=dp.acc_bits, store_bits=dp.store_bits, max_right=max_right, max_left=max_left,
        arena_depth=layout.depth, weight_widths=dp.weight_widths, weight_words=tuple(prog.weight_words) or (0,),
        param_words=tuple(pack_param_word(b, s, dp.acc_bits, shift_width) for b, s in prog.param_entries) or (0,),
        lut_words=tuple(prog.lut_words), program=tuple(prog.ops), tensors=tensors, layer_names=tuple(n.name for n in graph.nodes),
        output_name=layout.storage(graph.output.name), macs=sum(getattr(n, "macs", 0) for n in graph.nodes),
        write_lanes=write_lanes, product_stages=product_stages, read_latency=read_latency, arena_spram=arena_spram,
        weights_spram=weights_spram)
