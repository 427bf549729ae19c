"""`hwgen sim`: the cocotb regression of a build directory on Verilator, as a Python function."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .build import Build
from .errors import HwgenError
from .hwplan import OUTPUT, HardwarePlan, estimate_cycles
from .progress import run_watched


def traced_layers(hw: HardwarePlan) -> list[dict]:
    """The layers the accelerator writes (every node but Flatten aliases), in graph order."""
    out = []
    for op in hw.program:
        if op.kind != OUTPUT:
            name = hw.layer_names[op.trace_id]
            out.append({"trace_id": op.trace_id, "name": name, "size": op.n_out, "shape": list(hw.tensor(name).shape)})
    return out


def simulate(path: str | Path, *, inputs: int | None = None, stall: float = 0.0, seed: int = 0,
             progress: bool = False, work_dir: str | Path | None = None) -> dict:
    """Compile the build's Verilog (cached by digest) and check `inputs` vectors layer by layer."""
    from sim import runner

    build = Build.open(path)
    hw = build.hw
    vec = np.load(build.vectors)
    available = len(vec["x_int"])
    count = available if inputs is None else inputs
    if not 1 <= count <= available:
        raise HwgenError(f"the build holds {available} test vectors; ask for 1..{available} (or rebuild with --vectors N)")
    layers = traced_layers(hw)
    output_name = hw.output_name
    from rtl_templates.accelerator import trace_layout

    trace = trace_layout(hw)
    job = {
        "vectors": str((build.path / "vectors.npz").resolve()), "layers": layers, "inputs": count,
        "store_bits": hw.store_bits, "trace_layer_bits": trace["layer"].shape.width,
        "trace_index_bits": trace["index"].shape.width, "output": output_name,
        "stall": stall, "seed": seed,
        "cycle_limit": 50 * int(sum(op.n_out for op in hw.program) + hw.macs) + 100_000,
    }
    root = Path(work_dir) if work_dir else build.path / "sim_build"
    verilog = build.verilog.read_text()
    build_dir = runner.build(verilog, build.manifest["top"], root)
    progress_file = build_dir / "progress.txt"
    progress_file.unlink(missing_ok=True)
    runs = []

    def run_testbench():
        runs.append(runner.run(build_dir, build.manifest["top"], "sim.tb_accelerator", job, name="network",
                               extra_env={"HWGEN_PROGRESS": str(progress_file)}))

    def finished() -> int:  # the testbench appends a line per inference
        return len(progress_file.read_text().split()) if progress_file.exists() else 0

    run_watched(run_testbench, total=count, desc="simulating", unit="inference", done=finished, show=progress)
    sim = runs[0]
    rep = sim.report
    if not rep:
        raise HwgenError(f"the simulation produced no report; see {build_dir / 'network.log'}")
    if rep.get("error"):
        raise HwgenError(f"simulation failed: {rep['error']}; log: {build_dir / 'network.log'}")
    cycles = [inf["cycles"] for inf in rep["inferences"]]
    preds = np.asarray(rep["predictions"])
    labels = vec["labels"][:count] if "labels" in vec else None
    golden_out = vec[f"out_{output_name}"][:count]
    ideal = hw.macs / hw.pes
    per_inference = float(np.mean(cycles)) if cycles else 0.0
    ideal_layer = {c["layer"]: c["ideal"] for c in estimate_cycles(hw) if c["kind"] == "mac"}
    layer_rows = []
    for name, cyc in rep["layer_cycles"].items():
        il = ideal_layer.get(name, 0.0)
        layer_rows.append({"layer": name, "cycles": cyc, "ideal_cycles": il,
                           "pe_utilization": il / cyc if cyc and il else None})
    summary = {
        "build": str(build.path), "bit_exact": sim.failures == 0 and not rep["mismatches"] and len(cycles) == count,
        "inputs": len(cycles), "mismatches": rep["mismatches"], "array": f"{hw.rows}x{hw.cols}",
        "cycles_per_inference": per_inference, "ideal_cycles": ideal,
        "pe_utilization": ideal / per_inference if per_inference else 0.0,
        "rtl_accuracy": None if labels is None else float((preds == labels).mean()),
        "golden_accuracy": None if labels is None else float((golden_out.argmax(1) == labels).mean()),
        "layers": layer_rows, "log": str(build_dir / "network.log"),
    }
    (build.path / "sim.json").write_text(json.dumps(summary, indent=1) + "\n")  # read by `hwgen synth` for latency
    return summary
