"""What the user asks of a quantization method: bit-widths, overrides, options."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import PlanError
from ..fixed import MAX_BITS


@dataclass(frozen=True)
class LayerBits:
    weight: int | None = None
    act: int | None = None


@dataclass(frozen=True)
class QuantConfig:
    weight_bits: int = 8
    act_bits: int = 8
    bias_bits: int | None = None  # default: weight_bits + act_bits, at most 32
    per_channel: bool = False
    percentile: float | None = None  # None: max-abs ranges
    overrides: dict[str, LayerBits] = field(default_factory=dict)
    weight_budget: int | None = None  # sqnr: total weight bits to allocate across layers
    cost: str = "params"              # sqnr allocation cost: "params" (Lin et al.) or "hardware"
    target_mismatch: float = 0.01     # analytic: bound on P(fixed-point decision != float decision)
    tqt_epochs: int = 4               # tqt: quantization-aware fine-tuning epochs

    def __post_init__(self) -> None:
        for name, v in (("weight bits", self.weight_bits), ("activation bits", self.act_bits), ("bias bits", self.bias_bits)):
            if v is not None and not 2 <= v <= MAX_BITS:
                raise PlanError(f"{name} must be in 2..{MAX_BITS}, got {v}")
        for layer, o in self.overrides.items():
            for v in (o.weight, o.act):
                if v is not None and not 2 <= v <= MAX_BITS:
                    raise PlanError(f"override for layer {layer!r}: bits must be in 2..{MAX_BITS}, got {v}")
        if self.weight_budget is not None and self.weight_budget <= 0:
            raise PlanError(f"weight budget must be a positive number of bits, got {self.weight_budget}")
        if self.cost not in ("params", "hardware"):
            raise PlanError(f"cost must be 'params' or 'hardware', got {self.cost!r}")
        if not 0.0 < self.target_mismatch < 1.0:
            raise PlanError(f"target mismatch probability must be in (0, 1), got {self.target_mismatch}")
        if self.percentile is not None and not 50.0 < self.percentile <= 100.0:
            raise PlanError(f"percentile must be in (50, 100], got {self.percentile}")

    def wbits(self, layer: str) -> int:
        o = self.overrides.get(layer)
        return o.weight if o and o.weight else self.weight_bits

    def abits(self, layer: str) -> int:
        o = self.overrides.get(layer)
        return o.act if o and o.act else self.act_bits

    def bbits(self, layer: str) -> int:
        return self.bias_bits or min(MAX_BITS, self.wbits(layer) + self.abits(layer))


def parse_override(text: str) -> tuple[str, LayerBits]:
    """'conv1=w4' / 'fc=w4a8' / 'fc=a6' -> (layer, LayerBits)."""
    import re

    m = re.fullmatch(r"([^=]+)=(?:w(\d+))?(?:a(\d+))?", text.strip())
    if not m or not (m.group(2) or m.group(3)):
        raise PlanError(f"layer override {text!r}: expected NAME=wBITS[aBITS], e.g. conv1=w4a8 or fc=w4")
    return m.group(1), LayerBits(int(m.group(2)) if m.group(2) else None, int(m.group(3)) if m.group(3) else None)
