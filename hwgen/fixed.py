"""Power-of-2 fixed-point formats and the integer primitives of docs/numerics.md.

Every stage (golden model, fake-quant reference, RTL generator, tests) calls
these few functions, so the rounding and saturation rules live in one place.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import PlanError

MAX_BITS = 32


@dataclass(frozen=True)
class Fixed:
    """`Fixed(bits, frac, signed)`: integer q stands for q * 2**-frac."""

    bits: int
    frac: int
    signed: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.bits, int) or not 1 <= self.bits <= MAX_BITS:
            raise PlanError(f"bits must be an integer in 1..{MAX_BITS}, got {self.bits!r}")
        if not isinstance(self.frac, int):
            raise PlanError(f"frac must be an integer, got {self.frac!r}")
        if self.signed and self.bits < 2:
            raise PlanError("a signed format needs at least 2 bits (sign + magnitude), got bits=1")

    @property
    def min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def max_abs(self) -> int:
        return max(abs(self.min), abs(self.max))

    @property
    def step(self) -> float:
        return 2.0 ** -self.frac

    def to_json(self) -> dict:
        return {"bits": self.bits, "frac": self.frac, "signed": self.signed}

    @classmethod
    def from_json(cls, obj: dict) -> "Fixed":
        try:
            return cls(bits=obj["bits"], frac=obj["frac"], signed=bool(obj.get("signed", True)))
        except (KeyError, TypeError) as exc:
            raise PlanError(f"a format needs 'bits' and 'frac', got {obj!r}") from exc

    def __str__(self) -> str:
        return f"{'s' if self.signed else 'u'}{self.bits}.{self.frac}"


def saturate(values: np.ndarray, fmt: Fixed) -> tuple[np.ndarray, int]:
    """Clip to the format's range; also return how many values were clipped."""
    values = np.asarray(values, dtype=np.int64)
    clipped = np.clip(values, fmt.min, fmt.max)
    return clipped, int(np.count_nonzero(clipped != values))


def shift_round(acc: np.ndarray, shift) -> np.ndarray:
    """Numerics step 3: s > 0 rounds half up and shifts right, s <= 0 shifts left.

    `shift` is a scalar or an array broadcastable to `acc` (per-channel shifts).
    """
    acc = np.asarray(acc, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    right = np.maximum(s, 0)
    left = np.maximum(-s, 0)
    half = np.where(right > 0, np.left_shift(np.int64(1), np.maximum(right - 1, 0)), 0)
    return np.where(s > 0, (acc + half) >> right, acc << left)


LEAKY_MAX_SHIFT = 15  # slopes down to 2**-15


@dataclass(frozen=True)
class Activation:
    """A fused activation, parsed from the IR's text form (numerics step 4).

    "none", "relu", "relu6", "leaky:K" (LeakyReLU with slope 2**-K) and
    "clamp:LO:HI" (Hardtanh(LO, HI)). `lower`/`upper` are real bounds; a
    leaky activation divides negative values by 2**K before rounding.
    """

    lower: float | None = None
    upper: float | None = None
    neg_shift: int = 0

    @classmethod
    def parse(cls, text: str) -> "Activation":
        kind, *args = text.split(":")
        try:
            if kind == "none" and not args:
                return cls()
            if kind == "relu" and not args:
                return cls(lower=0.0)
            if kind == "relu6" and not args:
                return cls(lower=0.0, upper=6.0)
            if kind == "leaky" and len(args) == 1 and 1 <= int(args[0]) <= LEAKY_MAX_SHIFT:
                return cls(neg_shift=int(args[0]))
            if kind == "clamp" and len(args) == 2 and float(args[0]) < float(args[1]):
                return cls(lower=float(args[0]), upper=float(args[1]))
        except ValueError:
            pass
        raise PlanError(f"activation {text!r}: expected none, relu, relu6, leaky:K (K in 1..{LEAKY_MAX_SHIFT}) "
                        "or clamp:LO:HI with LO < HI")

    @property
    def nonnegative(self) -> bool:
        return self.lower is not None and self.lower >= 0

    def bounds(self, out: Fixed) -> tuple[int | None, int | None]:
        """The integer bounds in `out`: the lowest grid point >= lower, the highest <= upper, each kept
        within one step outside the format's range (beyond it the value saturates either way)."""
        lo = hi = None
        if self.lower is not None:
            lo = max(math.ceil(self.lower * 2.0 ** out.frac), out.min - 1)
        if self.upper is not None:
            hi = min(math.floor(self.upper * 2.0 ** out.frac), out.max + 1)
        return lo, hi


def requantize(acc: np.ndarray, acc_frac, out: Fixed, activation: str = "none") -> tuple[np.ndarray, int]:
    """Numerics steps 3-5: shift to `out.frac` (a leaky activation shifts negatives K more), clamp, saturate."""
    act = Activation.parse(activation)
    acc = np.asarray(acc, dtype=np.int64)
    shift = np.asarray(acc_frac, dtype=np.int64) - out.frac
    if act.neg_shift:
        shift = shift + np.where(acc < 0, act.neg_shift, 0)
    y = shift_round(acc, shift)
    lo, hi = act.bounds(out)
    if lo is not None:
        y = np.maximum(y, lo)
    if hi is not None:
        y = np.minimum(y, hi)
    return saturate(y, out)


def quantize_real(x: np.ndarray, fmt: Fixed, frac=None) -> tuple[np.ndarray, int]:
    """Quantize real values (model input, parameters): round half even in float64, saturate.

    `frac` overrides `fmt.frac`, broadcast against `x` (per-channel weights).
    """
    frac = fmt.frac if frac is None else np.asarray(frac, dtype=np.float64)
    scaled = np.asarray(x, dtype=np.float64) * np.power(2.0, frac)
    q = np.rint(scaled)  # IEEE round half to even
    q = np.clip(q, fmt.min - 1, fmt.max + 1).astype(np.int64)  # keep out-of-range visible, avoid overflow
    return saturate(q, fmt)


def signed_bits_for(magnitude: int) -> int:
    """Bits of a two's-complement register holding every integer in [-magnitude, magnitude]."""
    return int(magnitude).bit_length() + 1


def shift_bits(max_right: int, max_left: int) -> int:
    """Width of a signed shift amount covering [-max_left, max_right]."""
    return max(max_right, max_left, 1).bit_length() + 1
