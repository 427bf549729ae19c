"""Resource estimate of a hardware plan on a board, and `--array auto`: the fastest array that fits.

Block RAMs are counted exactly from the memory shapes and the family's
EBR aspect ratios. DSPs are one per PE (yosys maps every multiplier to
one), up to the board's count on ECP5, where further PEs multiply in logic
cells (`HardwarePlan.lut_pes`, at LUT_MULTIPLIER_LUTS_PER_BIT). LUTs come
from a linear model (`LutModel`), refitted to the syntheses that sweeps
record in the cache. The estimate only picks the array; `hwgen synth`
measures the real numbers and refuses a design that does not fit.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from .cache import ResultCache, digest
from .errors import HwgenError
from .hwplan import MAC, SPRAM_WIDTH, SPRAM_WORDS, ArrayShape, HardwarePlan, estimate_cycles, make_hardware_plan
from .hwplan.allocation import BankingError
from .quant import QuantizedModel

# (width, depth) modes of one block RAM
BRAM_MODES = {
    "ice40": [(2, 2048), (4, 1024), (8, 512), (16, 256)],
    "ecp5": [(1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512)],
}
# yosys keeps memories this small (bits) in logic instead of a block RAM
SMALL_MEMORY_BITS = 4096



@dataclass(frozen=True)
class LutModel:
    """LUTs = base + per PE accumulator bit + per row (address adders) + per column accumulator bit (requantizer).

    Multipliers are in DSPs and cost no LUTs. `DEFAULT` was fitted by hand to
    measured builds (digits_mlp 2x2 iCE40: 2631 LCs; digits_cnn 2x2 iCE40: 3309;
    digits_cnn 4x4 ECP5: 5762 LUT4s) and errs high. Every synthesis a sweep
    runs is recorded, and `calibrated` refits the model to those measurements:
    `--array auto` and the sweep then share one cost model.
    """

    base: float
    per_pe_acc_bit: float
    per_row: float
    per_col_acc_bit: float
    samples: int = 0  # measurements it was fitted to (0: the default)

    @staticmethod
    def features(hw: HardwarePlan) -> list[float]:
        return [1.0, hw.pes * hw.acc_bits, hw.rows, hw.cols * hw.acc_bits]

    def luts(self, hw: HardwarePlan) -> int:
        coeffs = [self.base, self.per_pe_acc_bit, self.per_row, self.per_col_acc_bit]
        return int(sum(c * f for c, f in zip(coeffs, self.features(hw)))) + lane_luts(hw)


# What the arena's second write lane costs on top of the linear law (the interleaved halves' read multiplexers,
# the MAC writer's held beat, the element-wise unit's second requantizer): measured once, digits_cnn 2x4 on the
# iCE40, 4852 LCs with one lane and 5051 with two. The law is fitted to one-lane figures: `record_luts` takes
# this off a two-lane measurement first.
SECOND_LANE_LUTS = 200


def lane_luts(hw: HardwarePlan) -> int:
    """Each lane past the first at SECOND_LANE_LUTS: a guess for the third and fourth (the parts' read
    multiplexers and the row writer's lanes), not yet measured apart."""
    return SECOND_LANE_LUTS * (hw.write_lanes - 1)


DEFAULT_LUT_MODEL = LutModel(2000, 6.0, 90, 14)
MIN_SAMPLES = 4


def record_luts(hw: HardwarePlan, family: str, luts: int, cache: str | None = None) -> None:
    """Keep one synthesis measurement for the family's LUT model (keyed by the design's features)."""
    feats = LutModel.features(hw)
    ResultCache(cache).put("lut_samples", digest(family, feats, hw.write_lanes, hw.lut_pes),
                           {"family": family, "features": feats,
                            "luts": luts - lane_luts(hw) - multiplier_luts(hw, family)})


# LUTs of one multiplier in logic cells (rtl_templates.multiplier.lut_product) per bit of weight x activation
# (its sign bit counted), by family. Measured with yosys synth_ecp5 on the multiplier alone, LUT4s plus two per
# CCU2C (2026-12-07): 4x4 unsigned 43, 4x5 signed 97, 8x8 307, 8x9 signed 355; the larger per-bit figures set it.
# Not the iCE40: its logic cells run out before its 8 DSPs (digits_cnn's 2x4 design fills 95% of them).
LUT_MULTIPLIER_LUTS_PER_BIT = {"ecp5": 5.0}
# The widest operand (an activation with its sign bit) `--array auto` multiplies in logic cells: a wider one costs
# more LUTs than a PE's DSP saves (8x8: 307) and deepens the adder tree between the product's registers.
LUT_MULTIPLIER_BITS = 6
# PEs in logic cost LUTs, routes and clock that the cycle model does not see: `--array auto` takes an array with
# them only where it estimates at most this share of the cycles of the fastest all-DSP array.
LUT_PE_GAIN = 0.8


def multiplier_luts(hw: HardwarePlan, family: str) -> int:
    """LUTs of the plan's multipliers in logic cells (its `lut_pes`)."""
    per_bit = LUT_MULTIPLIER_LUTS_PER_BIT.get(family, 0.0)
    return int(hw.lut_pes * per_bit * hw.w_bits * (hw.a_bits + hw.a_signed))


def narrow(hw: HardwarePlan, family: str) -> bool:
    """Whether `--array auto` may put PEs past the board's DSPs on this plan: a family that multiplies in logic
    cells and operands of at most LUT_MULTIPLIER_BITS."""
    return family in LUT_MULTIPLIER_LUTS_PER_BIT and max(hw.w_bits, hw.a_bits + hw.a_signed) <= LUT_MULTIPLIER_BITS


def calibrated(family: str, cache: str | None = None) -> LutModel:
    """Least-squares fit (non-negative per-unit costs) to the recorded measurements; the default until there
    are MIN_SAMPLES distinct designs that determine all four coefficients."""
    samples = [e for e in ResultCache(cache).entries("lut_samples") if e.get("family") == family]
    if len(samples) < MIN_SAMPLES:
        return DEFAULT_LUT_MODEL
    a = np.array([s["features"] for s in samples], dtype=float)
    y = np.array([s["luts"] for s in samples], dtype=float)
    if np.linalg.matrix_rank(a) < a.shape[1]:
        return DEFAULT_LUT_MODEL
    coeffs, *_ = np.linalg.lstsq(a, y, rcond=None)
    if (coeffs[1:] < 0).any():  # not physical: keep the default rather than extrapolate a negative cost
        return DEFAULT_LUT_MODEL
    return LutModel(*(float(c) for c in coeffs), samples=len(samples))


# Values the arena takes per cycle, by family (HardwarePlan.write_lanes). The UP5K is bound by its logic cells:
# the second lane (interleaved halves, pair routing, the writers' pairing) cost SECOND_LANE_LUTS of them, and
# digits_cnn at 2x4 no longer placed (5051 LCs of 5280) for 1% fewer cycles.
WRITE_LANES = {"ice40": 1}
# Elsewhere the second lane pays while the arena routes. Measured on the ULX3S-85F (2026-11-25, registered read
# addresses and DP16KD banks): ResNet-8 at 4x16 with two lanes (104 activation blocks) routed in 10 minutes at
# 79.0 MHz with 11% fewer cycles than one lane (75.3 MHz at c835798); DS-CNN at 16x8 with two lanes (160 blocks,
# 16 copies, 189 of 208 block RAMs) still had 24650 arcs to route after 22 minutes. The bound lies between.
MAX_TWO_LANE_ARENA_BLOCKS = 128


def write_lanes(family: str) -> int:
    """The family's lane count, before the arena's size is known (`plan_for` settles it per design)."""
    return WRITE_LANES.get(family, 2)


# Registers from a PE's operands to its product, by family (HardwarePlan.product_stages): ECP5 takes a fabric
# register behind the MULT18X18D (the DSP-to-accumulator route was 7.2 ns of the ULX3S-85F's critical path at
# 8x16); the UP5K cannot afford its flip-flops (an earlier try pushed digits_cnn's 2x4 design off the device).
PRODUCT_STAGES = {"ecp5": 3}
# Read latency of the banked memories, by family (HardwarePlan.read_latency): ECP5 registers the bank
# multiplexer's first level, because a large model's block RAMs spread over the die and the route from one of
# them into the whole multiplexer was the critical path (ResNet-8 at 4x16, 11.9 ns; the FC autoencoder's 9-bank
# weight ROM, 11.5 ns); the UP5K cannot spare the flip-flops, and its memories are a few banks.
READ_LATENCY = {"ecp5": 4}
# ... and where a memory has more banks than a group of the registered level (four), a register beside each
# bank before that level (latency 5): the block RAMs of such a memory spread over the die, and the route from
# one of them to its group register was the critical path at latency 4 (ResNet-8 at 4x16: an arena bank,
# 9.2 ns, 5.7 of it one route; the FC autoencoder's weight ROM, 10.2 ns, 7.9 of it one route)
SPREAD_BANKS = 4
SPREAD_READ_LATENCY = {"ecp5": 5}
# Whether the walker preloads the next row tile's window origins (HardwarePlan.preload_origins), by family: the
# UP5K cannot spare the second set of origin registers (digits_cnn's 2x4 design no longer placed with them)
PRELOAD_ORIGINS = {"ice40": False}


def most_banks(hw: HardwarePlan) -> int:
    """The most banks of one of the plan's banked memories (an arena part, the weight or parameter ROM) on ECP5."""
    memories = ((hw.store_bits, max(arena_parts(hw))), (hw.weight_word_width, len(hw.weight_words)),
                (hw.param_width, len(hw.param_words)))
    return max(math.ceil(depth / ecp5_bank_depth(width, depth)) for width, depth in memories if depth)


def plan_for(qm: QuantizedModel, shape: ArrayShape, family: str, board=None,
             lut_model: LutModel | None = None) -> HardwarePlan:
    """The hardware plan for a board family: two write lanes where the family takes them and the two-lane arena
    stays within MAX_TWO_LANE_ARENA_BLOCKS block RAMs, else one; four where an unrolled depthwise conv or a
    residual Add makes them faster at no more arena block RAMs (`_four_lanes_if_faster`); the family's product registers and read
    latency (one more where a memory has more than SPREAD_BANKS banks); the window origins preloaded or not.
    With a `board`: depthwise convs kept on one column where spreading them (more weight words) would not fit
    it and the plain plan would (MobileNetV1-0.25 at 2x4 on the ULX3S-85F: 216 block RAMs unrolled, 208 there);
    on a family that multiplies in logic cells, the PEs past the board's DSPs do (`lut_pes`)."""
    hw = _family_plan(qm, shape, family, board)
    if board is None or not hw.unrolls or _fits_board(hw, board, lut_model):
        return hw
    plain = _family_plan(qm, shape, family, board, unroll=False)
    return plain if _fits_board(plain, board, lut_model) else hw


def _fits_board(hw: HardwarePlan, board, lut_model: LutModel | None) -> bool:
    return usable(estimate(hw, board, lut_model), board)


def _family_plan(qm: QuantizedModel, shape: ArrayShape, family: str, board=None, unroll: bool = True) -> HardwarePlan:
    stages, latency = PRODUCT_STAGES.get(family, 2), READ_LATENCY.get(family, 3)
    hw = make_hardware_plan(qm, shape, write_lanes(family), stages, latency, unroll)
    if hw.write_lanes == 2 and arena_blocks(hw, family) > MAX_TWO_LANE_ARENA_BLOCKS:
        hw = make_hardware_plan(qm, shape, 1, stages, latency, unroll)
    elif hw.write_lanes == 2 and (hw.unrolls or any(op.pairs and op.has_b for op in hw.program)):
        hw = _four_lanes_if_faster(qm, shape, hw, family, stages, latency)
    if family in SPREAD_READ_LATENCY and most_banks(hw) > SPREAD_BANKS:
        hw = replace(hw, read_latency=SPREAD_READ_LATENCY[family])
    in_logic = board is not None and family in LUT_MULTIPLIER_LUTS_PER_BIT
    hw = replace(hw, preload_origins=PRELOAD_ORIGINS.get(family, True),
                 lut_pes=max(hw.pes - board.dsps, 0) if in_logic else 0)
    return _in_spram(qm, shape, hw, board, unroll) if board is not None and board.sprams else hw


def _in_spram(qm: QuantizedModel, shape: ArrayShape, hw: HardwarePlan, board, unroll: bool) -> HardwarePlan:
    """The arena, and if that is not enough the weights too, in the board's SPRAMs, where the plan does not
    fit its block RAM: the first of (arena), (arena and weights), (weights) that fits; else the arena's (so a
    misfit names what is still short).

    Why only then: a banked arena moves every tensor and puts a multiplexer in front of each SPRAM's address
    (logic cells, which the UP5K runs out of), and weights in SPRAM must be loaded at start (the host link's
    load frames); the designs that fit the block RAM keep their netlist."""
    if _fits_memory(hw, board) or hw.write_lanes != 1:
        return hw
    tried = []
    for arena, weights in ((True, False), (True, True), (False, True)):
        try:
            plan = make_hardware_plan(qm, shape, 1, hw.product_stages, hw.read_latency, unroll, arena_spram=arena,
                                      weights_spram=weights)
        except (BankingError, ValueError):
            continue
        plan = replace(plan, preload_origins=hw.preload_origins, lut_pes=hw.lut_pes)
        if _fits_memory(plan, board):
            return plan
        tried.append(plan)
    return next((p for p in tried if p.arena_spram and not p.weights_spram and spram_count(p) <= board.sprams), hw)


def _fits_memory(hw: HardwarePlan, board) -> bool:
    use = memory_use(hw, board.family)
    return sum(u.blocks for u in use) <= board.brams and sum(u.sprams for u in use) <= board.sprams


def arena_sprams(hw: HardwarePlan) -> int:
    """Each arena copy's banks, where the arena is in SPRAM."""
    return hw.replicas * math.ceil(hw.arena_depth / SPRAM_WORDS) if hw.arena_spram else 0


def weight_sprams(hw: HardwarePlan) -> int:
    """The weight memory's SPRAMs, side by side for words wider than one, where the weights are in SPRAM."""
    return (math.ceil(hw.weight_word_width / SPRAM_WIDTH) * math.ceil(len(hw.weight_words) / SPRAM_WORDS)
            if hw.weights_spram else 0)


def spram_count(hw: HardwarePlan) -> int:
    return arena_sprams(hw) + weight_sprams(hw)


def _four_lanes_if_faster(qm: QuantizedModel, shape: ArrayShape, hw: HardwarePlan, family: str, stages: int,
                          latency: int) -> HardwarePlan:
    """Four write lanes where they take fewer estimated cycles and no more arena block RAMs than two.

    Why: an unrolled depthwise conv does a few MACs per output and is bound by its writes (DS-CNN's at 9x10:
    8000 outputs, 4347 cycles with two lanes, 35% of the inference); the row writer takes as many pixels a
    cycle as the arena has lanes. So does a residual Add (ResNet-8's three: 14390 of 219639 cycles with two
    lanes): the element-wise unit reads, sums and writes `lanes` values a cycle. The MAC and max units keep
    writing pairs."""
    four = make_hardware_plan(qm, shape, 4, stages, latency, unroll=True)
    if (arena_blocks(four, family) <= arena_blocks(hw, family)
            and _total_cycles(four) < _total_cycles(hw)):
        return four
    return hw


def _total_cycles(hw: HardwarePlan) -> int:
    return sum(c.estimate for c in estimate_cycles(hw))


# ECP5: a wide memory's banks may be deeper than one block when that costs at most this factor more blocks
BANK_SLACK = 1.05


def ecp5_bank_depth(width: int, depth: int) -> int:
    """A banked memory's bank depth on ECP5: one DP16KD deep (the deepest mode one block's width holds), or, for
    a word wider than a block, the depth that gives the fewest banks within BANK_SLACK of the fewest blocks.

    Why: every bank has a register per bit and an input of the bank multiplexer. The FC autoencoder's weight
    ROM (16576 words of 128 bits) was 33 banks 512 words deep (4224 bank registers, a 33-way multiplexer of
    128 bits from 132 block RAMs) and did not route; 2048-deep banks make it 9 banks of 135 blocks.
    """
    modes = BRAM_MODES["ecp5"]
    base = max((d for w, d in modes if w >= width), default=min(d for _, d in modes))
    blocks = _ecp5_blocks(width, depth)
    fits = [d for d in blocks if d >= base and blocks[d] <= blocks[base] * BANK_SLACK]
    return min(fits, key=lambda d: (math.ceil(depth / d), blocks[d]))


def _ecp5_blocks(width: int, depth: int) -> dict[int, int]:
    """Block RAMs of `depth` words of `width` bits in each DP16KD mode, by the mode's depth."""
    return {d: math.ceil(width / w) * math.ceil(depth / d) for w, d in BRAM_MODES["ecp5"]}


def banked_blocks(width: int, depth: int, family: str) -> int:
    """Block RAMs of a banked memory (rtl_templates.memories.BankedMemory) on `family`."""
    if family != "ecp5":
        return bram_blocks(width, depth, family)
    return _ecp5_blocks(width, depth)[ecp5_bank_depth(width, depth)]


def bram_blocks(width: int, depth: int, family: str) -> int:
    if width * depth <= SMALL_MEMORY_BITS and family == "ice40":
        return 0
    if family == "ecp5":
        return min(_ecp5_blocks(width, depth).values())
    return min(math.ceil(width / w) * math.ceil(depth / d) for w, d in BRAM_MODES[family])


@dataclass(frozen=True)
class MemoryUse:
    """One kind of on-chip memory of a hardware plan, in bits and in the board family's block RAMs."""
    kind: str       # "activations", "weights" or "parameters"
    bits: int
    blocks: int
    detail: str     # what it holds, and its largest part
    sprams: int = 0  # SPRAMs instead of block RAMs (HardwarePlan.arena_spram, weights_spram)


def part_depths(depth: int, lanes: int) -> list[int]:
    """The depth of each part of a memory interleaved over `lanes` parts, address a in part a % lanes
    (rtl_templates.memories.InterleavedMemory builds them; at least one word each)."""
    return [max(-(-(depth - b) // lanes), 1) for b in range(lanes)]


def arena_parts(hw: HardwarePlan) -> list[int]:
    """The depth of each memory of one arena copy: one interleaved part per write lane."""
    return part_depths(hw.arena_depth, hw.write_lanes)


def arena_blocks(hw: HardwarePlan, family: str) -> int:
    """Block RAMs of the activation arena: every copy, each of one, two or four interleaved parts."""
    if hw.arena_spram:
        return 0
    return hw.replicas * sum(bram_blocks(hw.store_bits, part, family) for part in arena_parts(hw))


def memory_use(hw: HardwarePlan, family: str) -> list[MemoryUse]:
    largest = max(hw.tensors, key=lambda t: t.size)
    weight_words: dict[str, int] = {}
    for op in hw.program:
        if op.kind == MAC:
            weight_words[hw.layer_names[op.trace_id]] = op.tiles_per_mt * op.w_words  # column tiles x words
    heaviest = max(weight_words, key=weight_words.get) if weight_words else None
    copies = f"{hw.replicas} cop{'ies' if hw.replicas > 1 else 'y'}"
    acts = MemoryUse("activations", hw.replicas * hw.arena_depth * hw.store_bits, arena_blocks(hw, family),
                     f"{hw.arena_depth} words x {hw.store_bits} bits, {copies} (one read port per array row)"
                     f"{f' of {hw.write_lanes} interleaved parts' if hw.write_lanes > 1 else ''}"
                     f"{', two SPRAM banks each' if hw.arena_spram else ''}; largest "
                     f"tensor {largest.name!r} {largest.size} values", arena_sprams(hw))
    weights = MemoryUse("weights", len(hw.weight_words) * hw.weight_word_width,
                        0 if hw.weights_spram else banked_blocks(hw.weight_word_width, len(hw.weight_words), family),
                        f"{len(hw.weight_words)} words x {hw.weight_word_width} bits"
                        + (", loaded at start" if hw.weights_spram else "")
                        + (f"; largest layer {heaviest!r} {weight_words[heaviest]} words" if heaviest else ""),
                        weight_sprams(hw))
    params = MemoryUse("parameters", len(hw.param_words) * hw.param_width,
                       bram_blocks(hw.param_width, len(hw.param_words), family),
                       f"{len(hw.param_words)} tiles x {hw.param_width} bits of bias and shift")
    uses = [acts, weights, params]
    if hw.lut_words:
        uses.append(MemoryUse("tables", len(hw.lut_words) * hw.store_bits,
                              bram_blocks(hw.store_bits, len(hw.lut_words), family),
                              f"{len(hw.lut_words)} lookup-table entries x {hw.store_bits} bits"))
    return uses


def check_memory(hw: HardwarePlan, board, model_name: str = "the model") -> None:
    """One clear error when the plan's memories need more block RAMs than the board has."""
    use = memory_use(hw, board.family)
    need, sprams = sum(u.blocks for u in use), sum(u.sprams for u in use)
    if sprams > board.sprams:
        kinds = ", ".join(f"{u.kind} {u.sprams}" for u in use if u.sprams)
        raise HwgenError(f"{model_name}'s plan needs {sprams} SPRAMs ({kinds}); {board.description} has "
                         f"{board.sprams}. Use fewer array rows (each row reads its own activation copy) or set "
                         "arena_spram / weights_spram false in the hardware plan")
    if need <= board.brams:
        return
    parts = "; ".join(f"{u.kind} {u.blocks} block{'s' if u.blocks > 1 else ''} ({u.detail})" if u.blocks
                      else f"{u.kind} in {u.sprams} SPRAMs ({u.detail})" for u in use if u.blocks or u.sprams)
    raise HwgenError(f"{model_name} does not fit the block RAM of {board.description} at array {hw.rows}x{hw.cols}: "
                     f"it needs {need} of {board.brams} blocks, {need - board.brams} short: {parts}. Use fewer bits, "
                     "a smaller array (the activations are copied once per array row) or a larger board")


# What a plan with memories in SPRAM costs on top of the linear law (the multiplexer in front of each SPRAM's
# address, the weight loader): measured on the iCEBreaker (2026-12-07), the law fell short by 730-1000 logic
# cells on three SPRAM designs (a 6x40x40 model at 2x2 and 2x4, DS-CNN at 1x4 with its weights loaded) and by
# 400 on digits_cnn's block-RAM design; the low end, so DS-CNN's 1x4 (4933 of 5280 placed) stays a candidate
# and the 2x4 (5196, which did not place) does not
SPRAM_LUTS = 300


def estimate(hw: HardwarePlan, board, lut_model: LutModel | None = None) -> dict:
    brams = sum(u.blocks for u in memory_use(hw, board.family))
    # yosys maps every multiplier but those in logic cells (lut_product) to a DSP block (synth_ice40 -dsp,
    # synth_ecp5), even past the device's count
    model = lut_model or DEFAULT_LUT_MODEL
    luts = model.luts(hw) + multiplier_luts(hw, board.family) + (SPRAM_LUTS if spram_count(hw) else 0)
    return {"luts": luts, "brams": brams, "sprams": spram_count(hw),
            "dsps": hw.pes - hw.lut_pes, "pes": hw.pes, "lut_pes": hw.lut_pes, "lut_model": asdict(model)}


def fits(est: dict, board, margin: float = 0.85) -> bool:
    return (est["luts"] <= margin * board.luts and est["brams"] <= board.brams and est["dsps"] <= board.dsps
            and est.get("sprams", 0) <= board.sprams)


# Two ECP5 placements have not routed (nextpnr-ecp5's default router, stopped after 22 and 95 minutes): DS-CNN at
# 16x8 (128 of the ULX3S-85F's 156 DSPs, 189 of its 208 block RAMs) and ResNet-8 at 4x32 (128 DSPs, 153 block RAMs,
# 40k arcs left). Every one that routed had one of the two to spare: digits_cnn 8x16 (128 DSPs, 22 block
# RAMs), the OrangeCrab's 7x4 (all 28 DSPs, 19 of 56), ResNet-8 4x16 (64, 161), DS-CNN 16x4 (64, 167) and 9x10
# (90, 123: routed in about 45 minutes beside other jobs, 2026-12-06), the FC autoencoder 1x32 (32, 165), ResNet-8
# at 4 bits 4x32 (128, 107: routed in about 35 minutes, 111.6 MHz, 2026-12-07).
# `--array auto` keeps to shapes whose estimate stays within one of the two shares.
ROUTABLE_DSP_SHARE = 0.5
ROUTABLE_BRAM_SHARE = 0.6


def usable(est: dict, board) -> bool:
    """What `--array auto` accepts: the estimate fits the board and is `routable`."""
    return fits(est, board) and routable(est, board)


def routable(est: dict, board) -> bool:
    """False where an ECP5 design needs both many DSPs and much block RAM, like the two placements that did
    not route. The iCE40 is exempt: its 8 DSPs are all used by designs that route, and its logic cells run out first."""
    if board.family != "ecp5":
        return True
    pes = est.get("pes", est["dsps"])  # PEs, not DSPs: one that multiplies in logic cells has the same nets, and more
    return pes <= ROUTABLE_DSP_SHARE * board.dsps or est["brams"] <= ROUTABLE_BRAM_SHARE * board.brams


# Array sides `--array auto` compares: every row count to 16 (a row costs an arena copy, so the block RAM often
# stops the rows at a count that is no power of 2: ResNet-8 on the ULX3S-85F fits 5 rows, not 8) and column counts
# to 16 and a few wider ones (channel counts are multiples of 8 or 16: 24 columns tile 48 or 72 channels)
SIDES = (*range(1, 17), 20, 24, 32)


def candidate_shapes(max_pes: int) -> list[ArrayShape]:
    """Every rows x cols of SIDES (non-square too) with at most `max_pes` PEs."""
    return [ArrayShape(r, c) for r in SIDES for c in SIDES if r * c <= max_pes]


def most_pes(qm: QuantizedModel, board, model: LutModel) -> int:
    """One PE per DSP, and where the plan is `narrow`, as many more in logic cells as 85% of the board's LUTs
    would hold on their own (the fit check then counts the rest of the design)."""
    hw = _family_plan(qm, ArrayShape(1, 1), board.family)
    if not narrow(hw, board.family):
        return board.dsps
    per_pe = multiplier_luts(replace(hw, lut_pes=1), board.family) + model.per_pe_acc_bit * hw.acc_bits
    return board.dsps + int(0.85 * board.luts / per_pe)


def choose_array(qm: QuantizedModel, board, cache: str | None = None,
                 logic_multipliers: bool = True) -> tuple[ArrayShape, dict]:
    """The candidate with the fewest cycles per inference by the cycle model, among those whose estimate
    fits the board (85% of its LUTs, all its BRAMs and DSPs) and is `routable`; a tie goes to fewer PEs.
    An array with PEs past the board's DSPs (in logic cells: `most_pes`) wins only at LUT_PE_GAIN of the
    fastest all-DSP array's cycles or fewer (`logic_multipliers` False: never).

    LUTs come from the family's model calibrated on the sweeps' syntheses in the cache, if any. The
    returned estimate carries the model's cycles (`estimated_cycles`) and how many shapes were compared.
    """
    model = calibrated(board.family, cache)
    winners: dict[bool, tuple] = {}  # the fastest all-DSP array (False), with PEs in logic cells (True)
    compared = 0
    misfit_rows: dict[int, int] = {}  # columns -> the fewest rows that did not fit
    max_pes = most_pes(qm, board, model) if logic_multipliers else board.dsps
    for shape in sorted(candidate_shapes(max_pes), key=lambda s: (s.cols, s.rows)):
        if shape.rows > misfit_rows.get(shape.cols, shape.rows):
            continue  # another row only adds an arena copy, its PEs and their logic: it cannot fit either
        hw = plan_for(qm, shape, board.family, board, model)
        est = estimate(hw, board, model)
        if not usable(est, board):
            misfit_rows[shape.cols] = shape.rows
            continue
        compared += 1
        cycles = _total_cycles(hw)
        key = (cycles, shape.rows * shape.cols, shape.rows)
        in_logic = hw.lut_pes > 0
        if in_logic not in winners or key < winners[in_logic][0]:
            winners[in_logic] = (key, shape, {**est, "estimated_cycles": cycles})
    if True in winners and False in winners and winners[True][0][0] > LUT_PE_GAIN * winners[False][0][0]:
        del winners[True]  # not fast enough to pay for its logic
    best = min(winners.values(), key=lambda w: w[0])[1:] if winners else None
    if best is None:
        smallest = plan_for(qm, ArrayShape(1, 1), board.family)
        check_memory(smallest, board, Path(qm.graph.source).name if qm.graph.source else "the model")
        est = estimate(smallest, board, model)
        raise HwgenError(f"even a 1x1 array does not fit {board.description}: estimated {est['luts']} LUTs of "
                         f"{board.luts}, {est['brams']} block RAMs of {board.brams}; use fewer bits or a larger board")
    best[1]["shapes_fitting"] = compared
    return best
