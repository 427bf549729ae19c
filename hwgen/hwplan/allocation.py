"""Allocation pass: where every stored tensor lives in the activation arena.

Flatten stores nothing (CHW storage is already flat), so it aliases its input.
A torch.cat whose inputs are already in its format (quant.concat_formats) and
read by nothing else is a buffer its producers write into at their offsets
(views): it runs no program entry. A tensor lives from its first write until
its last reader ran (a layer's output never overlaps its inputs); the network
output stays live to the end (the output stream reads it). Two placements are
tried and the shallower kept: first-fit in the order tensors are written, and
largest first at the lowest address free over the tensor's whole life
(first-fit puts DS-CNN's 490-value input below its first 8000-value layer and
the next layer above both: 16490 words, where 16000 fit 8 block RAMs of 2048).

Single-ported memories (the iCE40's SPRAMs) take a banked arena
(`bank_words`): two banks, each tensor wholly in one, and every layer's
output in the bank its inputs are not in, so within a layer each bank is
only read or only written (a two-colouring of the graph of tensors joined by
a layer that reads one and writes the other; a chain always has one, a
residual block with a projection shortcut does not).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from typing import Callable

from .. import ir, ops
from ..errors import HwgenError
from ..fixed import Fixed


class BankingError(HwgenError):
    """No banked arena: the tensors cannot be two-coloured, or a bank overflows."""


@dataclass(frozen=True)
class ArenaLayout:
    bases: dict[str, int]      # stored tensor (and view) -> first arena address; tensors in first-write order
    depth: int                 # arena words
    alias: dict[str, str]      # aliasing node (Flatten) -> the node it reads
    views: dict[str, tuple[str, int]] = field(default_factory=dict)  # cat input -> (the cat, offset in it)

    def in_place(self, name: str) -> bool:
        """A cat whose producers wrote it in place: nothing to run."""
        return any(cat == name for cat, _ in self.views.values())

    def storage(self, name: str) -> str:
        """The stored tensor behind a node's output."""
        while name in self.alias:
            name = self.alias[name]
        return name

    def base(self, name: str) -> int:
        return self.bases[self.storage(name)]


def first_fit(sizes: list[tuple[str, int, int]], last_use: dict[str, int]) -> tuple[dict[str, int], int]:
    """First-fit placement of (name, size, first-write step) in step order; a tensor is freed once the step of its
    last reader has run."""
    live: list[tuple[int, int, str]] = []  # (base, size, name)
    bases: dict[str, int] = {}
    depth = 0
    for name, size, step in sorted(sizes, key=lambda t: t[2]):
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


def largest_first(sizes: list[tuple[str, int, int]], last_use: dict[str, int]) -> tuple[dict[str, int], int]:
    """Largest tensor first, each at the lowest address where it overlaps no placed tensor that is live at the
    same time (lives [first write, last use] that meet)."""
    placed: list[tuple[int, int, int, int]] = []  # (base, size, first, last)
    bases: dict[str, int] = {}
    depth = 0
    for name, size, step in sorted(sizes, key=lambda t: (-t[1], t[2])):
        last = last_use[name]
        base = 0
        for b, s, f, l in sorted(p for p in placed if p[2] <= last and step <= p[3]):
            if base + size <= b:
                break
            base = max(base, b + s)
        bases[name] = base
        placed.append((base, size, step, last))
        depth = max(depth, base + size)
    return bases, depth


def concat_views(graph: ir.Graph, fmt: Callable[[str], Fixed], alias: dict[str, str]) -> dict[str, tuple[str, int]]:
    """The cat inputs that can live inside their cat: same format, no activation, written by a layer of their
    own (not the graph input or an alias), read by nothing else."""
    views: dict[str, tuple[str, int]] = {}
    for cat in graph.nodes:
        if not isinstance(cat, ir.Concat) or cat.activation != "none":
            continue
        srcs = [graph.node(s) for s in cat.inputs]
        if all(not isinstance(n, ir.Input) and n.name not in alias and n.name not in views
               and graph.consumers(n.name) == [cat] and fmt(n.name) == fmt(cat.name) for n in srcs) \
                and len(set(cat.inputs)) == len(cat.inputs):
            offset = 0
            for n in srcs:
                views[n.name] = (cat.name, offset)
                offset += int(np.prod(n.shape))
    return views


def shallowest(sizes: list[tuple[str, int, int]], last_use: dict[str, int]) -> tuple[dict[str, int], int]:
    return min((place(sizes, last_use) for place in (first_fit, largest_first)), key=lambda p: p[1])


def two_colouring(names: list[str], pairs: set[tuple[str, str]]) -> dict[str, int]:
    """Bank 0 or 1 for every tensor, the two tensors of every pair (a layer's output, one of its inputs) apart."""
    near: dict[str, set[str]] = {name: set() for name in names}
    for a, b in pairs:
        if a == b:
            raise BankingError(f"layer output {a!r} is also its input")
        near[a].add(b)
        near[b].add(a)
    bank: dict[str, int] = {}
    for start in names:  # first-written first: the input lands in bank 0
        if start in bank:
            continue
        bank[start], todo = 0, [start]
        while todo:
            name = todo.pop()
            for other in near[name]:
                if other not in bank:
                    bank[other] = 1 - bank[name]
                    todo.append(other)
                elif bank[other] == bank[name]:
                    raise BankingError(f"tensors {name!r} and {other!r} would share a bank with a layer that reads "
                                       "one and writes the other (an odd cycle of layers, e.g. a projection shortcut)")
    return bank


def banked(sizes: list[tuple[str, int, int]], last_use: dict[str, int], pairs: set[tuple[str, str]],
           bank_words: int) -> tuple[dict[str, int], int]:
    """Each bank placed on its own (`shallowest`), bank 1 from address `bank_words` on; the depth is bank 1's
    top. Both colourings are tried (the input in bank 0 or 1) and the one with the shallower deeper bank kept."""
    colour = two_colouring([name for name, _, _ in sorted(sizes, key=lambda t: t[2])], pairs)
    best = None
    for flip in (0, 1):
        bases: dict[str, int] = {}
        depths = []
        for b in (0, 1):
            mine = [t for t in sizes if colour[t[0]] ^ flip == b]
            placed, depth = shallowest(mine, last_use) if mine else ({}, 0)
            bases |= {name: b * bank_words + base for name, base in placed.items()}
            depths.append(depth)
        if best is None or max(depths) < max(best[1]):
            best = (bases, depths)
    bases, depths = best
    if max(depths) > bank_words:
        raise BankingError(f"a bank needs {max(depths)} words, more than its {bank_words}")
    return bases, bank_words + depths[1]


def allocate(graph: ir.Graph, fmt: Callable[[str], Fixed] | None = None,
             bank_words: int | None = None) -> ArenaLayout:
    """`fmt`: each tensor's format (cats store in place only where their inputs share theirs). `bank_words`: a
    banked arena of two banks of that many words (single-ported memories); BankingError where none exists."""
    alias = {n.name: n.inputs[0] for n in graph.nodes if ops.rule(n).unit == "alias"}
    views = concat_views(graph, fmt, alias) if fmt is not None else {}
    layout = ArenaLayout({}, 0, alias, views)
    written = [n for n in graph.nodes if n.name not in alias]
    step_of = {n.name: i for i, n in enumerate(written)}
    stored = [n for n in written if n.name not in views]
    home = {n.name: views[n.name][0] if n.name in views else n.name for n in written}  # the tensor a write lands in
    first = {n.name: step_of[n.name] for n in stored}
    for v, (cat, _) in views.items():
        first[cat] = min(first[cat], step_of[v])
    last_use = {n.name: step_of[n.name] for n in stored}
    for n in written:
        for src in n.inputs:
            holder = home[layout.storage(src)]
            last_use[holder] = max(last_use[holder], step_of[n.name])
    last_use[home[layout.storage(graph.output.name)]] = len(written)
    sizes = [(n.name, int(np.prod(n.shape)), first[n.name]) for n in stored]
    if bank_words is None:
        placed, depth = shallowest(sizes, last_use)
    else:
        pairs = {(home[n.name], home[layout.storage(src)]) for n in written if not layout.in_place(n.name)
                 for src in n.inputs}
        placed, depth = banked(sizes, last_use, pairs, bank_words)
    bases = {name: placed[name] for name, _, _ in sorted(sizes, key=lambda t: t[2])}  # first written first: the input
    for v, (cat, offset) in views.items():
        bases[v] = bases[cat] + offset
    return ArenaLayout(bases, depth, alias, views)
