"""The table from IR node type to its rule; rule modules add themselves with @register."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from .. import ir

if TYPE_CHECKING:
    from .base import OpRule

REGISTRY: dict[type[ir.Node], "OpRule"] = {}


def register(node_type: type[ir.Node]) -> Callable[[type], type]:
    def deco(cls: type) -> type:
        REGISTRY[node_type] = cls()
        return cls
    return deco
