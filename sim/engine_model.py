"""Python side of the tile-engine regression: configurations, the reference model, the tiler.

The reference is hwgen.fixed's primitives (the golden model's), so the RTL is
checked against exactly the integers the golden model would produce.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from amaranth import signed, unsigned

from hwgen.fixed import Fixed, requantize
from hwgen.hwplan.lowering import requant_fields
from rtl_templates.engine import OPERAND_STAGE_LATENCY, OUT_FIFO_LATENCY, REQUANT_LATENCY, TileEngine
from rtl_templates.pe import RESULT_LATENCY


@dataclass(frozen=True)
class EngineConfig:
    rows: int
    cols: int
    w_bits: int
    a_bits: int
    a_signed: bool
    acc_bits: int
    out_bits: int
    max_right: int
    max_left: int

    def build(self, ice40_form: bool = False) -> TileEngine:
        """The engine; `ice40_form`: the iCE40's two-entry results FIFO and no operand register (TileEngine)."""
        a_shape = signed(self.a_bits) if self.a_signed else unsigned(self.a_bits)
        form = False if ice40_form else None
        return TileEngine(self.rows, self.cols, signed(self.w_bits), a_shape, self.acc_bits, self.out_bits,
                          self.max_right, self.max_left, consumer_free=form, operand_stage=form)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Problem:
    """C = requant(A @ W + bias) with per-column shift, one output format and activation."""

    a: np.ndarray      # (M, K) ints in the activation format
    w: np.ndarray      # (K, N) ints in the weight format
    bias: np.ndarray   # (N,) already on the accumulator grid
    shift: np.ndarray  # (N,) acc_frac - out.frac per column
    out: Fixed
    activation: str

    def expected(self) -> tuple[np.ndarray, np.ndarray]:
        acc = self.a.astype(np.int64) @ self.w.astype(np.int64) + self.bias[None, :]
        y, _ = requantize(acc, self.shift[None, :] + self.out.frac, self.out, self.activation)
        # per-element saturation flags, as the RTL reports them
        pre, _ = requantize(acc, self.shift[None, :] + self.out.frac, Fixed(32, self.out.frac, True), self.activation)
        return y, (pre != y)

    def to_json(self, perturb: bool = False) -> dict:
        y, sat = self.expected()
        if perturb:
            y = y.copy()
            y.flat[len(y.flat) // 2] += 1
        return {"a": self.a.tolist(), "w": self.w.tolist(), "bias": self.bias.tolist(), "shift": self.shift.tolist(),
                **requant_fields(self.out, self.activation), "expected": y.tolist(), "saturated": sat.astype(int).tolist()}


def acc_bits_needed(a_bits: int, w_bits: int, k: int) -> int:
    """Generic bound of docs/numerics.md plus one bit for the bias."""
    return w_bits + a_bits + math.ceil(math.log2(max(k, 1))) + 2


def random_config(rng: np.random.Generator, rows: int, cols: int, k_max: int) -> EngineConfig:
    w_bits = int(rng.integers(2, 17))
    a_bits = int(rng.integers(2, 17))
    a_signed = bool(rng.random() < 0.5)
    return EngineConfig(rows, cols, w_bits, a_bits, a_signed, acc_bits_needed(a_bits, w_bits, k_max),
                        out_bits=int(rng.integers(2, 17)), max_right=int(rng.integers(4, 40)), max_left=int(rng.integers(1, 6)))


def random_problem(rng: np.random.Generator, cfg: EngineConfig, m: int, k: int, n: int) -> Problem:
    a_fmt = Fixed(cfg.a_bits, 0, cfg.a_signed)
    w_fmt = Fixed(cfg.w_bits, 0, True)
    left = rng.random() < 0.3  # small operands, left shifts (s <= 0): results stay mostly in range
    a_lo, a_hi = (max(a_fmt.min, -3), min(a_fmt.max, 3)) if left else (a_fmt.min, a_fmt.max)
    w_lo, w_hi = (max(w_fmt.min, -3), min(w_fmt.max, 3)) if left else (w_fmt.min, w_fmt.max)
    a = rng.integers(a_lo, a_hi + 1, size=(m, k))
    w = rng.integers(w_lo, w_hi + 1, size=(k, n))
    out_signed = bool(rng.random() < 0.6)
    out = Fixed(int(rng.integers(2 if out_signed else 1, cfg.out_bits + 1)), int(rng.integers(-4, 8)), out_signed)
    activation = str(rng.choice(["none", "relu", "relu6", "clamp:-1.5:2.25"]))
    # Shifts around the one that maps the accumulator's spread onto the output range, both signs.
    spread = max(1, int(np.abs(a @ w).max()).bit_length())
    centre = spread - out.bits
    if left:
        shift = rng.integers(-cfg.max_left, 1, size=n)
    else:
        shift = np.clip(rng.integers(centre - 3, centre + 4, size=n), -cfg.max_left, cfg.max_right)
    bound = (1 << (cfg.acc_bits - 1)) - 1 - int(np.abs(a.astype(np.int64)) .sum(1).max()) * (1 << (cfg.w_bits - 1))
    bias_mag = max(0, min(bound, 1 << spread))
    bias = rng.integers(-bias_mag, bias_mag + 1, size=n)
    return Problem(a, w, bias, shift, out, activation)


def tile_cycles_model(cfg: EngineConfig, m: int, k: int, n: int, ice40_form: bool = False) -> int:
    """Cycles from the first operand to the last result, no stalls (docs/dataflow.md)."""
    tiles = math.ceil(m / cfg.rows) * math.ceil(n / cfg.cols)
    period = max(k, cfg.rows + cfg.cols - 1)
    return ((tiles - 1) * period + k + 2 * cfg.rows + cfg.cols - 2 + RESULT_LATENCY + REQUANT_LATENCY
            + OUT_FIFO_LATENCY + (0 if ice40_form else OPERAND_STAGE_LATENCY))
