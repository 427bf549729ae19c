"""Model file -> graph IR + float parameters (BatchNorm folded)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import ir
from ..errors import ModelFileError
from . import aten
from .loader import load


@dataclass(frozen=True)
class ImportedModel:
    graph: ir.Graph
    params: dict[str, dict[str, np.ndarray]]  # node name -> {"weight", "bias"} in float64, BN folded


def import_model(path: str | Path, *, trust: bool = False, input_shape: tuple[int, ...] | None = None) -> ImportedModel:
    loaded = load(path, trust=trust, input_shape=input_shape)
    shape = input_shape or loaded.input_shape
    if shape is None:
        raise ModelFileError(
            f"{str(path)!r} does not record its input shape: pass --input-shape C,H,W (without the batch), e.g. 1,8,8"
        )
    if loaded.input_shape is not None and input_shape is not None and tuple(input_shape) != tuple(loaded.input_shape):
        if loaded.kind == "export":
            raise ModelFileError(
                f"--input-shape {input_shape} differs from the shape {loaded.input_shape} the export archive was traced with"
            )
    nodes, params, output, host_ops = aten.build(loaded, tuple(shape))
    nodes, output = aten.fold_batchnorm(nodes, params, output)
    nodes, output = aten.fuse_activations(nodes, output)
    nodes = aten.prune(nodes, output)
    names = {n.name for n in nodes}
    params = {k: v for k, v in params.items() if k in names}
    return ImportedModel(ir.Graph(nodes=tuple(nodes), source=str(path), host_ops=host_ops), params)


__all__ = ["ImportedModel", "import_model"]
