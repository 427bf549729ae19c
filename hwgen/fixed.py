"""Power-of-2 fixed-point formats and the integer primitives of docs/numerics.md.

Every stage (golden model, fake-quant reference, RTL generator, tests) calls
these few functions, so the rounding and saturation rules live in one place.
"""
from __future__ import annotations

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


def relu6_ceiling(fmt: Fixed) -> int:
    """The integer that stands for 6.0 in `fmt` (floor when 6 is not representable)."""
    return 6 << fmt.frac if fmt.frac >= 0 else 6 >> -fmt.frac


def requantize(acc: np.ndarray, acc_frac, out: Fixed, activation: str = "none") -> tuple[np.ndarray, int]:
    """Numerics steps 3-5: shift to `out.frac`, fused activation, saturate."""
    y = shift_round(acc, np.asarray(acc_frac, dtype=np.int64) - out.frac)
    if activation in ("relu", "relu6"):
        y = np.maximum(y, 0)
    if activation == "relu6":
        y = np.minimum(y, relu6_ceiling(out))
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
