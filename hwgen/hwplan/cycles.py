"""Cycle model: per program entry, MACs, the ideal cycles (MACs / PEs) and a first-order estimate.

mac: each row tile takes its window origins in one setup cycle (they were
loaded, one a cycle, while the previous row tile ran: a row tile shorter than
`rows` cycles waits for them; the first row tile loads them first), or without
preloading (the iCE40) loads them in `rows` cycles; then every tile holds the array
for max(K, rows + cols - 1, writes) cycles (writes: two output pixels per
cycle, channel by channel, plus a cycle per pair to hold its first row; one
value per cycle on a one-lane arena). max: one window beat per k-step, then a
cycle per two output pixels of the tile (one, one-lane).
eltwise: two values per cycle where the entry pairs them, else one;
input/output: one value per cycle. 3 cycles per layer fetch its descriptor.
`hwgen sim` measures the real numbers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .loopnest import column_tiles, row_tiles
from .model import KINDS, MAC, MAX, OUTPUT, HardwarePlan, LayerOp

DESCRIPTOR_FETCH = 3
ORIGIN_SETUP = 1  # the cycle in which a row tile takes its preloaded window origins


@dataclass(frozen=True)
class LayerCycles:
    layer: str
    kind: str
    macs: int
    ideal: float       # MACs / PEs
    estimate: int

    def to_json(self) -> dict:
        return asdict(self)


def _write_cycles(rows: int, cols: int, lanes: int) -> int:
    """The MAC writer: with two lanes a pair of rows takes a cycle to hold the first, then one per column, and a
    lone row one per column; with one lane, a cycle per value."""
    if lanes == 1:
        return rows * cols
    return rows // 2 * (cols + 1) + rows % 2 * cols


def _row_tiles_cycles(op: LayerOp, rows: int, per_row_tile: int, preload: bool) -> int:
    """Every row tile with its origins: taken in ORIGIN_SETUP cycles once preloaded (the first row tile loads
    them first, and one shorter than `rows` cycles waits for the next), else loaded in `rows` cycles each."""
    if preload:
        return rows + sum(ORIGIN_SETUP + max(rows, per_row_tile) for _ in row_tiles(op, rows))
    return sum(rows + per_row_tile for _ in row_tiles(op, rows))


def _mac_cycles(op: LayerOp, hw: HardwarePlan) -> int:
    rows, cols = hw.rows, hw.cols
    per_row_tile = sum(max(op.k, rows + cols - 1, _write_cycles(min(rows, op.m), c.cols, hw.write_lanes))
                       for c in column_tiles(op, cols))
    return (_row_tiles_cycles(op, rows, per_row_tile, hw.preload_origins)
            + rows + cols + hw.product_stages + hw.read_latency - 1)


def _max_cycles(op: LayerOp, hw: HardwarePlan) -> int:
    per_row_tile = op.groups * (op.k + -(-min(hw.rows, op.m) // hw.write_lanes))
    return _row_tiles_cycles(op, hw.rows, per_row_tile, hw.preload_origins) + hw.read_latency + 1


def estimate_cycles(hw: HardwarePlan) -> list[LayerCycles]:
    out = []
    for op in hw.program:
        name = "(output stream)" if op.kind == OUTPUT else hw.layer_names[op.trace_id]
        macs = op.m * op.groups * op.coutg * op.k if op.kind == MAC else 0
        if op.kind == MAC:
            cycles = _mac_cycles(op, hw)
        elif op.kind == MAX:
            cycles = _max_cycles(op, hw)
        else:
            cycles = (-(-op.n_out // 2) if op.pairs else op.n_out) + hw.read_latency - 1
        out.append(LayerCycles(name, KINDS[op.kind], macs, macs / hw.pes, cycles + DESCRIPTOR_FETCH))
    return out
