"""Allocation pass: where every stored tensor lives in the activation arena.

Flatten stores nothing (CHW storage is already flat), so it aliases its input.
Tensors are placed first-fit in program order and freed after their last
reader ran; the network output stays live to the end (the output stream reads it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import ir, ops


@dataclass(frozen=True)
class ArenaLayout:
    bases: dict[str, int]      # stored tensor -> first arena address
    depth: int                 # arena words
    alias: dict[str, str]      # aliasing node (Flatten) -> the node it reads

    def storage(self, name: str) -> str:
        """The stored tensor behind a node's output."""
        while name in self.alias:
            name = self.alias[name]
        return name

    def base(self, name: str) -> int:
        return self.bases[self.storage(name)]


def first_fit(sizes: list[tuple[str, int]], last_use: dict[str, int]) -> tuple[dict[str, int], int]:
    """First-fit placement in program order; a tensor is freed once the step of its last reader has run."""
    live: list[tuple[int, int, str]] = []  # (base, size, name)
    bases: dict[str, int] = {}
    depth = 0
    for step, (name, size) in enumerate(sizes):
        live = sorted(t for t in live if last_use[t[2]] >= step)
        base = 0
        for b, s, _ in live:
            if base + size <= b:
                break
            base = max(base, b + s)
        bases[name] = base
        live.append((base, size, name))
        depth = max(depth, base + size)
    return bases, depth


def allocate(graph: ir.Graph) -> ArenaLayout:
    alias = {n.name: n.inputs[0] for n in graph.nodes if ops.rule(n).unit == "alias"}
    layout = ArenaLayout({}, 0, alias)
    stored = [n for n in graph.nodes if n.name not in alias]
    step_of = {n.name: i for i, n in enumerate(stored)}
    last_use = {n.name: step_of[n.name] for n in stored}
    for n in stored:
        for src in n.inputs:
            last_use[layout.storage(src)] = max(last_use[layout.storage(src)], step_of[n.name])
    last_use[layout.storage(graph.output.name)] = len(stored)
    bases, depth = first_fit([(n.name, int(np.prod(n.shape))) for n in stored], last_use)
    return ArenaLayout(bases, depth, alias)
