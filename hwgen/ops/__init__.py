"""The op registry: every IR op defined once, and every executor asks it.

One `OpRule` per IR node type holds what the op means to each stage: its
float semantics (reference, TQT, baselines), its fake-quant and integer
(golden) semantics, its accumulator bound and requantization shifts (the
plan's checks), the sign of its output (format choice), and the hardware unit
that runs it (lowering). Adding an op means one rule module here plus its IR
node, importer handler and RTL unit; docs/architecture.md lists the steps.
"""
from __future__ import annotations

from .. import ir
from ..errors import HwgenError
from .base import Golden, OpRule, acc_frac, add_frac, float_activation, pool_acc_frac
from .registry import REGISTRY, register

# importing the rule modules fills REGISTRY
from . import array_ops, elementwise, layout, lookup, pooling  # noqa: E402,F401


def rule(node: ir.Node) -> OpRule:
    try:
        return REGISTRY[type(node)]
    except KeyError:
        raise HwgenError(f"no op rule for {node.op!r} (layer {node.name!r}); ops with rules: "
                         f"{sorted(t.op for t in REGISTRY)}") from None


__all__ = ["Golden", "OpRule", "REGISTRY", "acc_frac", "add_frac", "float_activation", "pool_acc_frac",
           "register", "rule"]
