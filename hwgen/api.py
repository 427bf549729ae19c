"""The Python API: each CLI command is a thin shell over one of these functions."""
from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from . import golden
from .data import DIGITS_SHAPE, Dataset, digits, load_npz, synthetic
from .errors import HwgenError
from .importer import ImportedModel, import_model
from .quant import DATA_METHODS, METHODS, TRAINING_METHODS, QuantConfig, QuantizedModel, QuantPlan, calibrate, quantize_params
from .quant.concat_formats import share_concat_formats
from .quant.trained import apply_trained
from .reference import float_forward


class CalibrationWarning(UserWarning):
    pass


@dataclass(frozen=True)
class Prepared:
    model: ImportedModel
    calib: Dataset
    test: Dataset


def prepare(model: str | Path | ImportedModel, *, calib: str | Path | None = None, trust: bool = False,
            input_shape: tuple[int, ...] | None = None) -> Prepared:
    """Import the model and pick calibration / test data that fit its input shape."""
    imported = model if isinstance(model, ImportedModel) else import_model(model, trust=trust, input_shape=input_shape)
    shape = imported.graph.input.shape
    if calib is not None:
        data = load_npz(calib)
        if len(shape) == 3 and shape[1] == 1 and tuple(data.x.shape[1:]) == (shape[0], shape[2]):
            data = replace(data, x=data.x.reshape(len(data.x), *shape))  # 1-d signals (C, L): height-1 images
        if tuple(data.x.shape[1:]) != tuple(shape):
            raise HwgenError(f"calibration data {str(calib)!r} has samples of shape {data.x.shape[1:]}, the model takes {shape}")
        return Prepared(imported, data, data if data.y is not None else digits_or_synthetic(shape, seed=1))
    if tuple(shape) == DIGITS_SHAPE:
        return Prepared(imported, digits("train"), digits("test"))
    warnings.warn(
        f"the model's input shape {shape} does not fit the bundled digits set {DIGITS_SHAPE}: calibrating on seeded "
        "synthetic normal data; evaluation reports output SQNR against float instead of accuracy. "
        "Pass --calib data.npz for real data", CalibrationWarning, stacklevel=2)
    return Prepared(imported, synthetic(shape, seed=0), synthetic(shape, seed=1))


def digits_or_synthetic(shape, seed):
    return digits("test") if tuple(shape) == DIGITS_SHAPE else synthetic(shape, seed=seed)


def quantize(model: str | Path | ImportedModel | Prepared, *, bits: int = 8, weight_bits: int | None = None,
             act_bits: int | None = None, method: str = "range", plan: str | Path | QuantPlan | None = None,
             calib: str | Path | None = None, per_channel: bool = False, percentile: float | None = None,
             overrides: dict | None = None, trust: bool = False, input_shape: tuple[int, ...] | None = None,
             weight_budget: int | None = None, cost: str = "params", target_mismatch: float = 0.01,
             tqt_epochs: int = 4, progress: bool = False) -> QuantizedModel:
    """Import, calibrate and assign formats (or apply a user's plan); returns the integer model."""
    prep = model if isinstance(model, Prepared) else prepare(model, calib=calib, trust=trust, input_shape=input_shape)
    imported = prep.model
    if plan is not None:
        qplan = plan if isinstance(plan, QuantPlan) else QuantPlan.load(plan)
        return quantize_params(imported.graph, imported.params, qplan)
    known = {**METHODS, **DATA_METHODS, **TRAINING_METHODS}
    if method not in known:
        raise HwgenError(f"unknown method {method!r}; available: {', '.join(sorted(known))}")
    cfg = QuantConfig(weight_bits=weight_bits or bits, act_bits=act_bits or bits, per_channel=per_channel,
                      percentile=percentile, overrides=dict(overrides or {}), weight_budget=weight_budget, cost=cost,
                      target_mismatch=target_mismatch, tqt_epochs=tqt_epochs)
    unknown = set(cfg.overrides) - {n.name for n in imported.graph.nodes}
    if unknown:
        raise HwgenError(f"override names unknown layers {sorted(unknown)}; layers: {[n.name for n in imported.graph.nodes[1:]]}")
    stats = calibrate(imported.graph, imported.params, prep.calib.x, progress=progress)
    params = imported.params
    if method in TRAINING_METHODS:  # methods that also change the float parameters
        qplan, params = TRAINING_METHODS[method](imported.graph, imported.params, stats, cfg, prep.calib,
                                                 progress=progress)
    elif method in DATA_METHODS:
        qplan = DATA_METHODS[method](imported.graph, imported.params, stats, cfg, prep.calib)
    else:
        qplan = METHODS[method](imported.graph, imported.params, stats, cfg)
    keep: frozenset[str] = frozenset()
    if imported.trained is not None:  # a QONNX model: its quantizers' formats win over the calibrated ones
        qplan = apply_trained(qplan, imported.graph, params, imported.trained)
        keep = frozenset(imported.trained.activations)
    qplan = share_concat_formats(imported.graph, qplan, keep)
    return quantize_params(imported.graph, params, qplan)


def sqnr_db(reference: np.ndarray, test: np.ndarray) -> float:
    noise = np.sum((reference - test) ** 2)
    signal = np.sum(reference ** 2)
    return float("inf") if noise == 0 else float(10 * np.log10(signal / noise))


@dataclass(frozen=True)
class Evaluation:
    """Float against fixed point on the test data: what `hwgen eval` prints and `hwgen build` reports."""
    model: str
    method: str
    dataset: str
    inputs: int
    float_accuracy: float | None    # labelled data only
    fixed_accuracy: float | None
    output_sqnr_db: float           # fixed-point output against float, always
    weight_bits_total: int
    bias_bits_total: int
    input_format: dict
    layers: list[dict]              # per layer: formats, accumulator width, MACs, saturations (layer_table)

    def to_json(self) -> dict:
        return asdict(self)


def evaluate(model: str | Path | ImportedModel | Prepared, *, qm: QuantizedModel | None = None,
             limit: int | None = None, progress: bool = False, **quant_kwargs) -> Evaluation:
    """Float vs fixed on the test data: accuracy (labelled data) or output SQNR, per-layer formats and saturations."""
    prep = model if isinstance(model, Prepared) else prepare(
        model, calib=quant_kwargs.get("calib"), trust=quant_kwargs.get("trust", False),
        input_shape=quant_kwargs.get("input_shape"))
    qm = qm or quantize(prep, progress=progress, **{k: v for k, v in quant_kwargs.items() if k not in ("calib", "trust", "input_shape")})
    x = prep.test.x[:limit] if limit else prep.test.x
    y = prep.test.y[:limit] if (limit and prep.test.y is not None) else prep.test.y
    graph = prep.model.graph
    with torch.no_grad():
        float_logits = float_forward(graph, prep.model.params, torch.as_tensor(x, dtype=torch.float64))[graph.output.name].numpy()
    result = golden.run(qm, x)
    fixed_logits = golden.dequantize(result.logits(qm), qm.plan.layer(graph.output.name).out)
    return Evaluation(
        model=graph.source, method=qm.plan.method, dataset=prep.test.name, inputs=int(len(x)),
        float_accuracy=None if y is None else float((float_logits.argmax(1) == y).mean()),
        fixed_accuracy=None if y is None else float((fixed_logits.argmax(1) == y).mean()),
        output_sqnr_db=sqnr_db(float_logits, fixed_logits), weight_bits_total=qm.weight_bits_total,
        bias_bits_total=qm.bias_bits_total, input_format=qm.plan.input.to_json(), layers=layer_table(qm, result))


def layer_table(qm: QuantizedModel, result: golden.GoldenResult | None = None) -> list[dict]:
    rows = []
    for node in qm.graph.nodes[1:]:
        lp = qm.plan.layer(node.name)
        row = {"name": node.name, "op": node.op, "shape": list(node.shape),
               "in": [qm.in_format(node, k).to_json() for k in range(len(node.inputs))],
               "out": lp.out.to_json(), "weight": lp.weight.to_json() if lp.weight else None,
               "weight_channel_frac": list(lp.weight_channel_frac) if lp.weight_channel_frac else None,
               "bias": lp.bias.to_json() if lp.bias else None, "acc_bits": lp.acc_bits,
               "macs": getattr(node, "macs", 0),
               "weight_bits": int(qm.weights[node.name].size * lp.weight.bits) if node.name in qm.weights else 0,
               "param_saturations": qm.param_saturations.get(node.name, 0)}
        if result is not None:
            row["saturations"] = result.saturations.get(node.name, 0)
        rows.append(row)
    return rows
