"""The executable model of the tile loop nest that `mac` and `max` layers run.

One definition of the order in which the hardware visits tiles and k-steps:
packing lays out weights and parameters in this order, the cycle model counts
cycles over it, and the unit tests compare the RTL walker's addresses with it.

    for each row tile (up to `rows` output pixels, one per array row):
        for each group:
            for each column tile (up to `cols` output channels of the group):
                for each k-step (input channel of the group, ky, kx):
                    one beat: every row's activation (pad outside the image)
                    and the column tile's weights
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from .model import LayerOp


@dataclass(frozen=True)
class ColumnTile:
    group: int
    index: int          # column tile within its group
    serial: int         # group * nt + index: the tile's weight block and parameter word
    first_channel: int  # output channel on array column 0
    cols: int           # valid columns (output channels) in this tile


@dataclass(frozen=True)
class RowTile:
    index: int
    first_pixel: int    # output pixel on array row 0
    rows: int           # valid rows (output pixels) in this tile


@dataclass(frozen=True)
class Tile:
    row: RowTile
    column: ColumnTile


@dataclass(frozen=True)
class KStep:
    k: int
    channel: int        # input channel within the group
    ky: int
    kx: int


def column_tiles(op: LayerOp, cols: int) -> list[ColumnTile]:
    return [ColumnTile(g, t, g * op.nt + t, g * op.coutg + t * cols, cols if t < op.nt - 1 else op.cols_last)
            for g in range(op.groups) for t in range(op.nt)]


def row_tiles(op: LayerOp, rows: int) -> list[RowTile]:
    return [RowTile(mt, mt * rows, min(rows, op.m - mt * rows)) for mt in range(op.mtiles)]


def tiles(op: LayerOp, rows: int, cols: int) -> Iterator[Tile]:
    columns = column_tiles(op, cols)
    for row in row_tiles(op, rows):
        for column in columns:
            yield Tile(row, column)


def k_steps(op: LayerOp) -> Iterator[KStep]:
    k = 0
    for c in range(op.cin_g):
        for ky in range(op.kh):
            for kx in range(op.kw):
                yield KStep(k, c, ky, kx)
                k += 1


def window_address(op: LayerOp, pixel: int, group: int, step: KStep) -> int | None:
    """Arena address of one window element for output pixel `pixel`; None where it falls in the padding."""
    if pixel >= op.m:
        return None
    oy, ox = divmod(pixel, op.ow)
    y, x = oy * op.sy - op.py + step.ky, ox * op.sx - op.px + step.kx
    if not (0 <= y < op.h and 0 <= x < op.w):
        return None
    return op.in_base + group * op.group_in_step + step.channel * op.hw + y * op.w + x


def output_address(op: LayerOp, pixel: int, channel: int) -> int:
    """Arena address of output (channel, pixel): CHW storage."""
    return op.out_base + channel * op.ohw + pixel


def segment_pixels(op: LayerOp, pixel: int) -> int:
    """Output pixels an unrolled layer's row segment `pixel` holds: `unroll`, `tail` in an output row's last one,
    none past the layer's end."""
    if pixel >= op.m:
        return 0
    return op.tail if pixel % op.ow == op.ow - 1 else op.unroll


def unrolled_output_address(op: LayerOp, pixel: int, group: int, column: int) -> int | None:
    """Arena address of what array column `column` computes for row segment `pixel` of an unrolled layer (its
    channel is the group); None past the output row's end."""
    if column >= segment_pixels(op, pixel):
        return None
    oy, segment = divmod(pixel, op.ow)
    width = (op.ow - 1) * op.unroll + op.tail
    return op.out_base + group * op.ohw + oy * width + segment * op.unroll + column


def weight_word(op: LayerOp, tile: ColumnTile, step: KStep) -> tuple[int, int]:
    """(weight memory word, sub-word) holding the column tile's weights for one k-step."""
    if op.w_hold:  # all k-steps share the tile's one word
        return op.w_base + tile.serial * op.w_words, 0
    return op.w_base + tile.serial * op.w_words + step.k // op.w_per_word, step.k % op.w_per_word
