"""Packing pass: weight and parameter memory images, laid out in the loop nest's tile order.

A weight word holds one k-step of every column of a tile (`w_per_word` k-steps
when the layer is narrower than the multiplier; an average pool's tile has one
word, its reciprocal, read at every k-step); a parameter word holds every
column's bias (accumulator units) and requantization shift for one tile.
An unrolled depthwise layer's columns are one channel's neighbouring pixels:
each column has the channel's kernel at its own offset and the channel's
bias and shift.
"""
from __future__ import annotations

import numpy as np

from .. import ir
from ..fixed import signed_bits_for
from ..quant.plan import QuantizedModel
from .loopnest import ColumnTile, column_tiles, k_steps, weight_word
from .model import LayerOp


def weight_matrix(qm: QuantizedModel, node: ir.Node) -> tuple[np.ndarray, int]:
    """(weights as (output channels, K) int64, signed width) of a node that runs on the array.

    An average pool is a depthwise layer whose weights all equal the reciprocal
    (1 for power-of-2 windows: the shift then divides)."""
    if isinstance(node, (ir.Conv2d, ir.Linear)):
        w = qm.weights[node.name]
        return w.reshape(w.shape[0], -1), qm.plan.layer(node.name).weight.bits
    assert isinstance(node, ir.AvgPool2d)
    value = qm.plan.layer(node.name).reciprocal_value or 1
    return np.full((node.shape[0], node.window), value, dtype=np.int64), signed_bits_for(value)


def pack_weights(op: LayerOp, wmat: np.ndarray, wbits: int, lane_bits: int, cols: int) -> list[int]:
    """The layer's weight words from `op.w_base` on: column j of a word in lane j (`lane_bits` wide)."""
    mask = (1 << wbits) - 1
    words = [0] * (len(column_tiles(op, cols)) * op.w_words)
    steps = list(k_steps(op))
    for tile in column_tiles(op, cols):
        # the tile's weights as Python ints, k-step major: `--array auto` packs every candidate's weights, and
        # reading numpy elements one at a time was most of its time
        block = (column_tile_weights(op, wmat, tile).T & mask).tolist()
        for step in steps:
            addr, sub = weight_word(op, tile, step)
            word = 0
            for j, value in enumerate(block[step.k]):
                word |= value << (j * lane_bits)
            words[addr - op.w_base] |= word << (sub * wbits)
    return words


def column_tile_weights(op: LayerOp, wmat: np.ndarray, tile: ColumnTile) -> np.ndarray:
    """(tile.cols, K): the weights each valid column of the tile multiplies at each k-step."""
    if op.unrolled:
        return unrolled_block(op, wmat[tile.group])
    return wmat[tile.first_channel:tile.first_channel + tile.cols]


def unrolled_block(op: LayerOp, kernel: np.ndarray) -> np.ndarray:
    """An unrolled layer's (unroll, K) weights for one channel: column j's pixel lies j strides right of column
    0's, so it sees the channel's kernel shifted right by j strides within the widened window, zeros elsewhere."""
    kw, stride = op.kernel_x
    kernel = kernel.reshape(op.kh, kw)
    block = np.zeros((op.unroll, op.kh, op.kw), dtype=np.int64)
    for j in range(op.unroll):
        block[j, :, j * stride:j * stride + kw] = kernel
    return block.reshape(op.unroll, op.k)


def tile_params(op: LayerOp, bias_acc: np.ndarray, shift: np.ndarray, cols: int) -> list[tuple[list[int], list[int]]]:
    """(per-column biases, per-column shifts) per column tile, zero in columns past the group's channels."""
    out = []
    for tile in column_tiles(op, cols):
        chans = [(tile.group if op.unrolled else tile.first_channel + j) if j < tile.cols else None
                 for j in range(cols)]
        out.append(([0 if c is None else int(bias_acc[c]) for c in chans],
                    [0 if c is None else int(shift[c]) for c in chans]))
    return out


def pack_param_word(bias: list[int], shift: list[int], acc_bits: int, shift_width: int) -> int:
    """Per-column biases (low bits) then per-column shifts: the tile engine's layout."""
    word, pos = 0, 0
    for b in bias:
        word |= (b & ((1 << acc_bits) - 1)) << pos
        pos += acc_bits
    for s in shift:
        word |= (s & ((1 << shift_width) - 1)) << pos
        pos += shift_width
    return word
