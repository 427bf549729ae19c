"""Program encoding pass: the layer program as descriptor ROM words, each field as wide as its widest value."""
from __future__ import annotations

from dataclasses import fields

from ..fixed import signed_bits_for
from .model import HardwarePlan, LayerOp


# LayerOp fields the hardware never reads (the loop-nest model and packing use them): not in the ROM
PLAN_ONLY_FIELDS = frozenset({"cin_g", "coutg", "w_per_word"})
# fields only the row writer reads: in the ROM only where a layer is unrolled (HardwarePlan.unrolls)
UNROLL_FIELDS = frozenset({"unroll", "tail"})


def descriptor_fields(hw: HardwarePlan) -> list[tuple[str, int]]:
    """(field, signed width) of the descriptor ROM, in LayerOp field order."""
    out = []
    for f in fields(LayerOp):
        if f.name in PLAN_ONLY_FIELDS or (f.name in UNROLL_FIELDS and not hw.unrolls):
            continue
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
