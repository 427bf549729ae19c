"""Cycle model: per program entry, MACs, the ideal cycles (MACs / PEs) and a first-order estimate.

mac: each row tile takes its window origins in one setup cycle (they were
loaded, one a cycle, while the previous row tile ran: a row tile shorter than
`rows` cycles waits for them; the first row tile loads them first), or without
preloading (the iCE40) loads them in `rows` cycles; then every tile holds the array
for max(K, rows + cols - 1, writes) cycles (writes: two output pixels per
cycle, channel by channel, plus a cycle per pair to hold its first row; on a
four-lane arena four, plus a cycle to hold each of a group's first three; one
value per cycle on a one-lane arena; an unrolled depthwise layer's rows write
their segments as one run of addresses, as many pixels per cycle as the arena
has lanes). max: one window beat per
k-step, then a cycle per two output pixels of the tile (one, one-lane).
eltwise: as many values per cycle as the arena has lanes where the entry pairs them, else one;
input/output: one value per cycle. 3 cycles per layer fetch its descriptor.
`hwgen sim` measures the real numbers.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .loopnest import column_tiles, row_tiles, segment_pixels
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
    lone row one per column; with four, a group of up to four rows a cycle to hold each but the last, then one
    per column; with one lane, a cycle per value."""
    if lanes == 1:
        return rows * cols
    if lanes == 4 and rows >= 2:
        return rows // 4 * (cols + 3) + (rows % 4 and cols + rows % 4 - 1)
    return rows // 2 * (cols + 1) + rows % 2 * cols


def _segment_write_cycles(op: LayerOp, first_pixel: int, rows: int, lanes: int) -> int:
    """The row writer (an unrolled layer), per group of a row tile: its segments are one run of addresses,
    written `lanes` pixels a cycle, a cycle's pixels spanning segments (a segment's last pixels wait for the next
    one's first); at least a cycle per row (a beat), rows past the layer's end included."""
    counts = [segment_pixels(op, p) for p in range(first_pixel, first_pixel + rows)]
    if lanes == 1:
        return sum(max(1, n) for n in counts)
    cycles = pend = 0
    for row, n in enumerate(counts):
        total = pend + n
        if row + 1 < rows and counts[row + 1]:  # what does not fill a cycle waits for the next row
            cycles, pend = cycles + max(1, total // lanes), total % lanes
        else:
            cycles, pend = cycles + max(1, -(-total // lanes)), 0
    return cycles


def _row_tiles_cycles(op: LayerOp, rows: int, per_row_tile, preload: bool) -> int:
    """Every row tile with its origins: taken in ORIGIN_SETUP cycles once preloaded (the first row tile loads
    them first, and one shorter than `rows` cycles waits for the next), else loaded in `rows` cycles each.
    `per_row_tile(row_tile)`: the cycles its tiles hold the array."""
    if preload:
        return rows + sum(ORIGIN_SETUP + max(rows, per_row_tile(t)) for t in row_tiles(op, rows))
    return sum(rows + per_row_tile(t) for t in row_tiles(op, rows))


def mac_cycles(op: LayerOp, rows: int, cols: int, lanes: int, preload: bool = True) -> int:
    """The cycles a `mac` entry holds the array (`_mac_cycles` less the pipeline's fill and drain)."""
    if op.unrolled:
        def per_row_tile(t):
            return op.groups * max(op.k, rows + cols - 1, _segment_write_cycles(op, t.first_pixel, rows, lanes))
    else:
        fixed = sum(max(op.k, rows + cols - 1, _write_cycles(min(rows, op.m), c.cols, lanes))
                    for c in column_tiles(op, cols))

        def per_row_tile(t):
            return fixed
    return _row_tiles_cycles(op, rows, per_row_tile, preload)


def _mac_cycles(op: LayerOp, hw: HardwarePlan) -> int:
    return (mac_cycles(op, hw.rows, hw.cols, hw.write_lanes, hw.preload_origins)
            + hw.rows + hw.cols + hw.product_stages + hw.read_latency - 1)


def _max_cycles(op: LayerOp, hw: HardwarePlan) -> int:
    per_row_tile = op.groups * (op.k + -(-min(hw.rows, op.m) // min(hw.write_lanes, 2)))
    return _row_tiles_cycles(op, hw.rows, lambda t: per_row_tile, hw.preload_origins) + hw.read_latency + 1


def estimate_cycles(hw: HardwarePlan) -> list[LayerCycles]:
    out = []
    for op in hw.program:
        name = "(output stream)" if op.kind == OUTPUT else hw.layer_names[op.trace_id]
        macs = op.macs if op.kind == MAC else 0
        if op.kind == MAC:
            cycles = _mac_cycles(op, hw)
        elif op.kind == MAX:
            cycles = _max_cycles(op, hw)
        else:
            cycles = (-(-op.n_out // hw.write_lanes) if op.pairs else op.n_out) + hw.read_latency - 1
        out.append(LayerCycles(name, KINDS[op.kind], macs, macs / hw.pes, cycles + DESCRIPTOR_FETCH))
    return out
