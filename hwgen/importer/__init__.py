"""Model file -> graph IR + float parameters (BatchNorm folded)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import ir
from ..errors import ModelFileError, UnsupportedOpError
from . import aten
from .loader import load
from .onnx_front import TrainedFormats


@dataclass(frozen=True)
class ImportedModel:
    graph: ir.Graph
    params: dict[str, dict[str, np.ndarray]]  # node name -> {"weight", "bias"} in float64, BN folded
    trained: TrainedFormats | None = None     # a QONNX model's formats, keyed by graph node name


def _node_formats(formats: TrainedFormats, alias: dict[str, str], built: list[ir.Node], final: list[ir.Node],
                  source: str) -> TrainedFormats:
    """Map the quantizers' formats from ONNX tensors onto the graph nodes left after folding and fusing: a node
    folded away (BatchNorm, a fused activation) hands its format to the node it was folded into."""
    by_name = {n.name: n for n in built}
    kept = {n.name for n in final}

    def survivor(name: str) -> str:
        while name not in kept:
            name = by_name[name].inputs[0]
        return name

    out = TrainedFormats(input=formats.input)
    for tensor, fmt in formats.activations.items():
        node = survivor(alias.get(tensor, tensor))
        if node == final[0].name:
            out.input = fmt
        else:
            out.activations[node] = fmt  # later quantizers of the same node win: the format it is stored in
    for src, dst in ((formats.weights, out.weights), (formats.biases, out.biases)):
        for call_out, fmt in src.items():
            node = alias.get(call_out, call_out)
            if node not in kept:
                continue
            dst[node] = fmt
    folded = {n.inputs[0] for n in built if n.op == "batchnorm"}
    for node in folded & set(out.weights):
        raise UnsupportedOpError(f"{source}: a BatchNorm follows the quantized layer {node!r}; folding it would change "
                                 "the trained integer weights. Fold BatchNorm into the layer before quantization-aware "
                                 "training (or export)")
    return out


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
    built, params, output, host_ops, alias = aten.build(loaded, tuple(shape))
    nodes, output = aten.fold_batchnorm(built, params, output)
    nodes, output = aten.fuse_activations(nodes, output)
    nodes = aten.prune(nodes, output)
    names = {n.name for n in nodes}
    params = {k: v for k, v in params.items() if k in names}
    formats = loaded.extra.get("formats")
    trained = _node_formats(formats, alias, built, nodes, str(path)) if formats is not None else None
    if trained is not None and not (trained.input or trained.activations or trained.weights):
        trained = None  # a plain float ONNX model: calibrate it like any other
    return ImportedModel(ir.Graph(nodes=tuple(nodes), source=str(path), host_ops=host_ops), params, trained)


__all__ = ["ImportedModel", "import_model"]
