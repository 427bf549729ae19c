"""Resource estimate of a hardware plan on a board, and `--array auto`: the largest array that fits.

Block RAMs are counted exactly from the memory shapes and the family's
EBR aspect ratios. DSPs are one per PE (yosys maps every multiplier to
one). LUTs come from a linear model fitted to `bench/synth.py` measurements. The estimate only picks the array;
`hwgen synth` measures the real numbers and refuses a design that does not
fit.
"""
from __future__ import annotations

import math

from .errors import HwgenError
from .hwplan import ArrayShape, HardwarePlan, make_hardware_plan
from .quant import QuantizedModel

# (width, depth) modes of one block RAM
BRAM_MODES = {
    "ice40": [(2, 2048), (4, 1024), (8, 512), (16, 256)],
    "ecp5": [(1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512)],
}
# yosys keeps memories this small (bits) in logic instead of a block RAM
SMALL_MEMORY_BITS = 4096

# LUT model, fitted to measured builds (digits_mlp 2x2 iCE40: 2631 LCs; digits_cnn 2x2 iCE40: 3309;
# digits_cnn 4x4 ECP5: 5762 LUT4s) and erring high; bench/synth.py prints estimate next to measurement:
# fixed control + per PE (multiplier outside DSPs, accumulator, drain) + per row (address adders) + per column
# (requantizer). Multipliers are in DSPs and cost no LUTs.
LUT_BASE = 2000
LUT_PER_ACC_BIT_PE = 6.0
LUT_PER_ROW = 90
LUT_PER_COL_ACC_BIT = 14


def bram_blocks(width: int, depth: int, family: str) -> int:
    if width * depth <= SMALL_MEMORY_BITS and family == "ice40":
        return 0
    return min(math.ceil(width / w) * math.ceil(depth / d) for w, d in BRAM_MODES[family])


def estimate(hw: HardwarePlan, board) -> dict:
    brams = hw.replicas * bram_blocks(hw.store_bits, hw.arena_depth, board.family)
    brams += bram_blocks(hw.weight_word_width, len(hw.weight_words), board.family)
    brams += bram_blocks(hw.param_width, len(hw.param_words), board.family)
    # yosys maps every multiplier to a DSP block (synth_ice40 -dsp, synth_ecp5), even past the device's count
    dsps = hw.pes
    luts = (LUT_BASE + hw.pes * LUT_PER_ACC_BIT_PE * hw.acc_bits + hw.rows * LUT_PER_ROW
            + hw.cols * LUT_PER_COL_ACC_BIT * hw.acc_bits)
    return {"luts": int(luts), "brams": brams, "dsps": dsps}


def fits(est: dict, board, margin: float = 0.85) -> bool:
    return est["luts"] <= margin * board.luts and est["brams"] <= board.brams and est["dsps"] <= board.dsps


CANDIDATES = [ArrayShape(r, c) for r, c in
              [(1, 1), (1, 2), (2, 2), (2, 4), (4, 4), (4, 8), (8, 8), (8, 16), (16, 16)]]


def choose_array(qm: QuantizedModel, board) -> tuple[ArrayShape, dict]:
    """The largest candidate array whose estimate fits the board (85% of its LUTs, all its BRAMs and DSPs)."""
    best = None
    for shape in CANDIDATES:
        est = estimate(make_hardware_plan(qm, shape), board)
        if fits(est, board):
            best = (shape, est)
    if best is None:
        est = estimate(make_hardware_plan(qm, CANDIDATES[0]), board)
        raise HwgenError(f"even a 1x1 array does not fit {board.description}: estimated {est['luts']} LUTs of "
                         f"{board.luts}, {est['brams']} block RAMs of {board.brams}; use fewer bits or a larger board")
    return best
