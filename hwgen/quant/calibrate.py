"""Observers: record per-tensor statistics of the float network over calibration data.

As in torch.ao's ObserverBase: observing and turning statistics into formats
are separate steps; methods read `TensorStats`, never the data.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from .. import ir
from ..reference import float_forward

SAMPLE_LIMIT = 200_000  # values kept per tensor for percentiles


@dataclass(frozen=True)
class TensorStats:
    min: float
    max: float
    samples: np.ndarray  # |x| subsample for percentiles

    @property
    def max_abs(self) -> float:
        return max(abs(self.min), abs(self.max))

    def abs_percentile(self, q: float) -> float:
        return float(np.percentile(self.samples, q)) if self.samples.size else 0.0


class RangeObserver:
    def __init__(self, seed: int = 0):
        self.min, self.max = np.inf, -np.inf
        self.chunks: list[np.ndarray] = []
        self.rng = np.random.default_rng(seed)

    def update(self, t: torch.Tensor) -> None:
        v = t.detach().double().numpy().ravel()
        if v.size == 0:
            return
        self.min, self.max = min(self.min, float(v.min())), max(self.max, float(v.max()))
        keep = min(v.size, SAMPLE_LIMIT // 8)
        self.chunks.append(np.abs(self.rng.choice(v, keep, replace=False) if keep < v.size else v))

    def stats(self) -> TensorStats:
        s = np.concatenate(self.chunks) if self.chunks else np.zeros(0)
        if s.size > SAMPLE_LIMIT:
            s = self.rng.choice(s, SAMPLE_LIMIT, replace=False)
        return TensorStats(float(self.min), float(self.max), s)


def calibrate(graph: ir.Graph, params: dict, x: np.ndarray, batch: int = 256, progress: bool = True) -> dict[str, TensorStats]:
    """Statistics of every node's float output (the input included) over `x`."""
    observers = {n.name: RangeObserver() for n in graph.nodes}
    with torch.no_grad():
        for start in tqdm(range(0, len(x), batch), desc="calibrate", unit="batch", disable=not progress, leave=False):
            outs = float_forward(graph, params, torch.as_tensor(x[start:start + batch], dtype=torch.float32))
            for name, t in outs.items():
                observers[name].update(t)
    return {k: o.stats() for k, o in observers.items()}
