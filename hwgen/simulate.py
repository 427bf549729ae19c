"""`hwgen sim`: the cocotb regression of a build directory on Verilator, as a Python function.

The accelerator runs inside a Verilog harness (sim/harness.py) that feeds the
inputs and records every activation write to a trace file, so the simulator
runs at its own speed; the trace is then checked against the golden vectors
element by element (sim/trace.py). The compiled model is cached by digest.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .build import Build
from .errors import HwgenError
from .hwplan import OUTPUT, HardwarePlan, estimate_cycles
from .progress import run_watched


@dataclass(frozen=True)
class LayerTiming:
    layer: str
    cycles: int
    ideal_cycles: float              # MACs / PEs (0 for layers off the array)
    pe_utilization: float | None


@dataclass(frozen=True)
class SimulationResult:
    """What `hwgen sim` measured: bit-exactness, cycles against the ideal, accuracy from the RTL, simulator speed."""
    build: str
    bit_exact: bool
    inputs: int
    mismatches: list[dict]           # per failing inference: layer, element, got, want (sim/trace.py)
    array: str
    cycles_per_inference: float
    ideal_cycles: float
    pe_utilization: float
    rtl_accuracy: float | None       # labelled vectors only
    golden_accuracy: float | None
    layers: tuple[LayerTiming, ...]
    log: str
    mode: str                        # "fast" (trace harness) or "stall" (random backpressure)
    compile_seconds: float
    compile_cached: bool
    sim_seconds: float
    simulated_cycles: int
    cycles_per_second: float
    trace_writes: int
    dsp: str = "generic"             # the form simulated (SIM_FORMS)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> "SimulationResult":
        return cls(**{**obj, "layers": tuple(LayerTiming(**row) for row in obj["layers"])})


def traced_layers(hw: HardwarePlan) -> list[dict]:
    """The layers the accelerator writes (every node but Flatten aliases), in graph order; a layer written by
    several program entries (a concat's copies) once, with its whole tensor's size."""
    out = {}
    for op in hw.program:
        if op.kind != OUTPUT and op.trace_id not in out:
            name = hw.layer_names[op.trace_id]
            t = hw.tensor(name)
            out[op.trace_id] = {"trace_id": op.trace_id, "name": name, "size": t.size, "shape": list(t.shape)}
    return list(out.values())


def trace_format(hw: HardwarePlan):
    from rtl_templates.accelerator import trace_layout
    from sim.harness import TraceFormat

    trace = trace_layout(hw)
    return TraceFormat(trace["layer"].shape.width, trace["index"].shape.width, hw.store_bits, hw.write_lanes)


SIM_FORMS = ("generic", "ecp5", "ice40")


def accelerator_sources(build: Build, dsp: str = "generic") -> dict[str, str]:
    """The accelerator's Verilog by file name: the build's own, or re-emitted as `hwgen synth` builds it for an
    ECP5 board (the PEs' MULT18X18D and the RAM banks' DP16KD instances, plus our behavioural models of those
    cells) or for an iCE40 board (its per-family forms: two-entry FIFOs, beats taken straight from the
    engine's FIFO, LUT parameter ROMs, SB_RAM40_4K-deep banks; inferred cells, as yosys maps them)."""
    from rtl_templates.family import FamilyTarget

    if dsp not in SIM_FORMS:
        raise HwgenError(f"unknown cell form {dsp!r}; choose one of {', '.join(SIM_FORMS)}")
    if dsp == "generic":
        return {build.manifest["verilog"]: build.verilog.read_text()}
    from rtl_templates.accelerator import Accelerator
    from sim.runner import ecp5_models

    from .verilog import emit_verilog

    text = emit_verilog(Accelerator(build.hw), build.manifest["top"], platform=FamilyTarget(dsp))
    return {build.manifest["verilog"]: text, **(ecp5_models() if dsp == "ecp5" else {})}


def compile_build(build: Build, cache: Path | None = None, dsp: str = "generic"):
    """The build's accelerator inside the harness, compiled (or taken from the cache)."""
    from sim import runner
    from sim.harness import PORTS, TOP, harness_verilog

    hw = build.hw
    vec_count = int(build.manifest["inputs"])
    harness = harness_verilog(trace_format(hw), build.manifest["top"], hw.input.size, max(vec_count, 1),
                              len(hw.weight_image()) if hw.weights_spram else 0)
    sources = {**accelerator_sources(build, dsp), f"{TOP}.v": harness}
    return runner.build(sources, TOP, cache, public=PORTS)


def simulate(path: str | Path, *, inputs: int | None = None, stall: float = 0.0, seed: int = 0,
             progress: bool = False, work_dir: str | Path | None = None, cache: str | Path | None = None,
             fault: dict[str, int] | None = None, dsp: str = "generic") -> SimulationResult:
    """Compile the build (cached by digest) and check `inputs` vectors layer by layer.

    `dsp="ecp5"` simulates the PEs and memories as `hwgen synth` builds them for an ECP5
    board (registered MULT18X18D and DP16KD instances, with sim/models/), `dsp="ice40"`
    the forms it builds for an iCE40 board (`accelerator_sources`).

    `fault` ({"drop": N} or {"dup": N}) makes the harness leave out or repeat
    the N-th trace record: for tests that the checker catches a lost write.
    """
    from sim import runner
    from sim.harness import TOP
    from sim.trace import TraceError, check

    build = Build.open(path)
    hw = build.hw
    vec = np.load(build.vectors)
    available = len(vec["x_int"])
    count = available if inputs is None else inputs
    if not 1 <= count <= available:
        raise HwgenError(f"the build holds {available} test vectors; ask for 1..{available} (or rebuild with --vectors N)")
    layers = traced_layers(hw)
    fmt = trace_format(hw)
    design = compile_build(build, Path(cache) if cache else None, dsp)

    run_dir = Path(work_dir).resolve() if work_dir else (build.path / "sim_run").resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    x_file, trace_file, progress_file = run_dir / "inputs.hex", run_dir / "trace.hex", run_dir / "progress.txt"
    digits = -(-hw.store_bits // 4)
    mask = (1 << hw.store_bits) - 1
    x = (vec["x_int"][:count].astype(np.int64) & mask).ravel()
    x_file.write_text("".join(f"{int(v):0{digits}x}\n" for v in x))
    progress_file.unlink(missing_ok=True)
    trace_file.unlink(missing_ok=True)
    plusargs = [f"+hwgen_x={x_file}", f"+hwgen_trace={trace_file}", f"+hwgen_inputs={count}"]
    if hw.weights_spram:  # the harness loads the weights first (sim.harness: `load_bytes`)
        w_file = run_dir / "weights.hex"
        w_file.write_text("".join(f"{b:02x}\n" for b in hw.weight_image()))
        plusargs.append(f"+hwgen_w={w_file}")
    for kind, n in (fault or {}).items():
        plusargs.append(f"+hwgen_{kind}={int(n)}")
    per_inference_limit = 50 * int(sum(op.n_out for op in hw.program) + hw.macs) + 100_000
    job = {"inputs": count, "stall": stall, "seed": seed, "cycle_limit": per_inference_limit}
    runs = []

    def run_testbench():
        runs.append(runner.run(design, TOP, "sim.tb_network", job, name="network", run_dir=run_dir, plusargs=plusargs,
                               extra_env={"HWGEN_PROGRESS": str(progress_file)}))

    def finished() -> int:  # the testbench appends a line per inference
        return len(progress_file.read_text().split()) if progress_file.exists() else 0

    t0 = time.monotonic()
    run_watched(run_testbench, total=count, desc="simulating", unit="inference", done=finished, show=progress)
    sim_seconds = time.monotonic() - t0
    sim = runs[0]
    log = run_dir / "network.log"
    if not sim.report:
        raise HwgenError(f"the simulation produced no report; see {log}")
    if sim.report.get("error"):
        raise HwgenError(f"simulation failed: {sim.report['error']}; log: {log}")
    expected = {lay["name"]: vec[f"out_{lay['name']}"] for lay in layers}
    try:
        rep = check(trace_file, fmt, layers, expected, hw.output_name, count)
    except TraceError as exc:
        raise HwgenError(f"simulation trace unreadable: {exc}; log: {log}") from None
    if rep.get("error"):
        raise HwgenError(f"simulation failed: {rep['error']}; log: {log}")
    cycles = [inf["cycles"] for inf in rep["inferences"]]
    preds = np.asarray(rep["predictions"])
    labels = vec["labels"][:count] if "labels" in vec else None
    golden_out = vec[f"out_{hw.output_name}"][:count]
    ideal = hw.macs / hw.pes
    per_inference = float(np.mean(cycles)) if cycles else 0.0
    ideal_layer = {c.layer: c.ideal for c in estimate_cycles(hw) if c.kind == "mac"}
    layer_rows = []
    for name, cyc in rep["layer_cycles"].items():
        il = ideal_layer.get(name, 0.0)
        layer_rows.append(LayerTiming(name, cyc, il, il / cyc if cyc and il else None))
    sim_cycles = int(sim.report.get("sim_cycles", 0))
    sim_wall = float(sim.report.get("wall_seconds", 0.0))
    result = SimulationResult(
        build=str(build.path), bit_exact=sim.failures == 0 and not rep["mismatches"] and len(cycles) == count,
        inputs=len(cycles), mismatches=rep["mismatches"], array=f"{hw.rows}x{hw.cols}",
        cycles_per_inference=per_inference, ideal_cycles=ideal,
        pe_utilization=ideal / per_inference if per_inference else 0.0,
        rtl_accuracy=None if labels is None else float((preds == labels).mean()),
        golden_accuracy=None if labels is None else float((golden_out.argmax(1) == labels).mean()),
        layers=tuple(layer_rows), log=str(log), mode="stall" if stall > 0 else "fast",
        compile_seconds=design.compile_seconds, compile_cached=design.cached,
        sim_seconds=sim_seconds, simulated_cycles=sim_cycles,
        cycles_per_second=sim_cycles / sim_wall if sim_wall > 0 else 0.0, trace_writes=rep["records"], dsp=dsp)
    # read by `hwgen synth` for the latency
    (build.path / "sim.json").write_text(json.dumps(result.to_json(), indent=1) + "\n")
    return result
