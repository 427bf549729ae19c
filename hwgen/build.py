"""`hwgen build`: model -> plan -> golden vectors -> hardware plan -> Verilog, written atomically.

A build directory holds everything later stages need, so `hwgen sim` (and
later `hwgen synth`) run from it alone:

    build.json        manifest: schema, model, array, file digests
    graph.json        the imported graph IR
    plan.json         the quantization plan (editable; rebuild with --plan)
    hwplan.json       the hardware plan: widths, memory images, layer program
    hwgen_accelerator.v   the generated Verilog (top module `hwgen_accelerator`)
    vectors.npz       integer test inputs, every layer's golden outputs, labels
    report.json/.md   per-layer formats, MACs, memory bits, estimated cycles, accuracy
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import api, golden
from .errors import HwgenError
from .hwplan import ArrayShape, HardwarePlan, estimate_cycles, make_hardware_plan
from .quant import QuantizedModel
from .report import build_report, format_build_report
from .verilog import emit_verilog

TOP = "hwgen_accelerator"
MANIFEST = "build.json"
SCHEMA = "hwgen.build"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Build:
    """A finished build directory, loaded."""

    path: Path
    manifest: dict
    hw: HardwarePlan

    @property
    def verilog(self) -> Path:
        return self.path / self.manifest["verilog"]

    @property
    def vectors(self) -> Path:
        return self.path / "vectors.npz"

    @classmethod
    def open(cls, path: str | Path) -> "Build":
        path = Path(path)
        manifest_file = path / MANIFEST
        if not manifest_file.exists():
            raise HwgenError(f"{str(path)!r} is not a hwgen build directory (no {MANIFEST}); run hwgen build MODEL -o {path}")
        manifest = json.loads(manifest_file.read_text())
        if manifest.get("schema") != SCHEMA or manifest.get("version") != SCHEMA_VERSION:
            raise HwgenError(f"{str(path)!r} was written by an incompatible hwgen; rebuild it")
        for name, digest in manifest["files"].items():
            f = path / name
            if not f.exists() or hashlib.sha256(f.read_bytes()).hexdigest() != digest:
                raise HwgenError(f"build file {str(f)!r} is missing or was modified after the build; rebuild")
        return cls(path, manifest, HardwarePlan.load(path / "hwplan.json"))


def golden_vectors(qm: QuantizedModel, x: np.ndarray, y: np.ndarray | None) -> dict[str, np.ndarray]:
    """Integer inputs and every stored layer's integer outputs, flattened per inference."""
    result = golden.run(qm, x)
    vec = {"x_int": result.outputs[qm.graph.input.name].reshape(len(x), -1)}
    for node in qm.graph.nodes:
        vec[f"out_{node.name}"] = result.outputs[node.name].reshape(len(x), -1)
    if y is not None:
        vec["labels"] = np.asarray(y, dtype=np.int64)
    return vec


def build(model: str | Path, output: str | Path, *, array: ArrayShape | str, inputs: int = 100,
          board: str | None = None, progress: bool = False, **quant_kwargs) -> Build:
    """Run every stage up to Verilog and write the build directory in one step (no partial directory)."""
    from rtl_templates.accelerator import Accelerator

    output = Path(output)
    _check_target(output)
    prep = api.prepare(model, calib=quant_kwargs.pop("calib", None), trust=quant_kwargs.pop("trust", False),
                       input_shape=quant_kwargs.pop("input_shape", None))
    qm = api.quantize(prep, progress=progress, **quant_kwargs)
    fit_estimate = None
    if array == "auto" and board is None:
        raise HwgenError("--array auto needs --board NAME: the array is sized to fit that board")
    if board is not None:
        from boards import board as get_board

        from .fit import calibrated, check_memory, choose_array, plan_for
        target = get_board(board)
        if array == "auto":
            array, fit_estimate = choose_array(qm, target)
    # with a board: the plan choose_array compared (the same LUT model), depthwise convs spread where that fits
    hw = (plan_for(qm, array, target.family, target, calibrated(target.family)) if board is not None
          else make_hardware_plan(qm, array))
    if board is not None:
        check_memory(hw, target, Path(str(model)).name)
    verilog = emit_verilog(Accelerator(hw), TOP)
    n = min(inputs, len(prep.test.x))
    vectors = golden_vectors(qm, prep.test.x[:n], None if prep.test.y is None else prep.test.y[:n])
    evaluation = api.evaluate(prep, qm=qm)
    report = build_report(qm, hw, estimate_cycles(hw), evaluation, array, n)

    tmp = output.parent / f".{output.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        files = {
            "graph.json": qm.graph.dumps(),
            "plan.json": json.dumps(qm.plan.to_json(), indent=1) + "\n",
            "hwplan.json": json.dumps(hw.to_json()) + "\n",
            f"{TOP}.v": verilog,
            "report.json": json.dumps(report, indent=1) + "\n",
            "report.md": format_build_report(report),
        }
        for name, text in files.items():
            (tmp / name).write_text(text)
        np.savez_compressed(tmp / "vectors.npz", **vectors)
        digests = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(tmp.iterdir())}
        manifest = {"schema": SCHEMA, "version": SCHEMA_VERSION, "model": str(model), "array": str(array),
                    "board": board, "fit_estimate": fit_estimate,
                    "top": TOP, "verilog": f"{TOP}.v", "inputs": n, "dataset": prep.test.name, "files": digests}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        _replace(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Build.open(output)


def _check_target(output: Path) -> None:
    if output.exists() and (not output.is_dir() or (any(output.iterdir()) and not (output / MANIFEST).exists())):
        raise HwgenError(f"{str(output)!r} exists and is not a hwgen build directory; choose another -o or remove it")


def _replace(new: Path, output: Path) -> None:
    """Swap the finished directory in; an older build at `output` is removed only after that."""
    old = None
    if output.exists():
        old = output.parent / f".{output.name}.old-{os.getpid()}"
        output.rename(old)
    new.rename(output)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
