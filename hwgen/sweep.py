"""`hwgen sweep`: accuracy against latency against resources over methods x bit-widths x arrays x boards.

Each point runs three stages, each cached by a digest of what it reads
(hwgen.cache): build (quantize, evaluate, hardware plan, Verilog; keyed by
the model's bytes, the settings and hwgen's own source), cycles measured on
Verilator (keyed by the build's file digests and the simulator sources), and
synthesis (keyed inside `hwgen.synth` by the exact tool inputs and versions).
A repeated or extended sweep only computes what is new.

Points run in a local process pool by default, or as Ray tasks on an
existing cluster (`ray_address`); a point's result does not depend on where
it ran, so both give the same JSON. The model travels with the task (its
bytes), so remote workers need hwgen installed but not the model file. A
failed point (a misfit, a tool error) is recorded with its one-line reason.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from .cache import ResultCache, digest, file_digest
from .errors import HwgenError

SCHEMA = "hwgen.sweep"
SCHEMA_VERSION = 1
PACKAGE_DIRS = ("hwgen", "rtl_templates", "boards", "sim")


@dataclass(frozen=True)
class SweepPoint:
    method: str
    weight_bits: int
    array: str
    board: str | None = None
    act_bits: int = 8

    @property
    def label(self) -> str:
        return f"{self.method} w{self.weight_bits}a{self.act_bits} {self.array}" + (f" {self.board}" if self.board else "")


@dataclass(frozen=True)
class SweepSettings:
    """What every point shares."""

    inputs: int = 2              # test vectors simulated per point (cycles are the same for every input)
    synth: bool = True           # synthesize points that name a board
    clock_mhz: float | None = None
    cache: str | None = None     # hwgen cache root; None: $HWGEN_CACHE or ~/.cache/hwgen
    input_shape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class PointResult:
    point: SweepPoint
    status: str                  # "ok" or "failed"
    reason: str | None = None
    metrics: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {**asdict(self.point), "label": self.point.label, "status": self.status, "reason": self.reason,
                **self.metrics}


def parse_bits(text: str) -> list[int]:
    """"2..8" (inclusive range), "4,6,8" or "4"."""
    try:
        if ".." in text:
            lo, hi = (int(v) for v in text.split(".."))
            values = list(range(lo, hi + 1))
        else:
            values = [int(v) for v in text.split(",")]
    except ValueError:
        raise HwgenError(f"--bits must look like 2..8 or 4,6,8, got {text!r}") from None
    if not values or any(not 2 <= v <= 16 for v in values):
        raise HwgenError(f"--bits {text!r}: widths must be in 2..16")
    return values


def grid(methods: Iterable[str], bits: Iterable[int], arrays: Iterable[str], boards: Iterable[str | None],
         act_bits: int = 8) -> list[SweepPoint]:
    return [SweepPoint(m, b, a, brd, act_bits) for m in methods for b in bits for a in arrays for brd in boards]


def source_digest() -> str:
    """Digest of hwgen's own Python sources: a code change is a new cache key, never a stale hit."""
    root = Path(__file__).resolve().parents[1]
    files = sorted(p for d in PACKAGE_DIRS for p in (root / d).rglob("*.py"))
    return digest(*[(str(p.relative_to(root)), file_digest(p)) for p in files])


def run_point(point: SweepPoint, model_bytes: bytes, model_suffix: str, settings: SweepSettings,
              code: str) -> tuple[dict, int]:
    """One point, end to end: (its result as JSON, how many of its stages came from the cache)."""
    from .build import Build, build
    from .hwplan import ArrayShape
    from .simulate import simulate

    store = ResultCache(settings.cache)
    hits = 0
    work = Path(tempfile.mkdtemp(prefix="hwgen-sweep-"))
    try:
        model = work / f"model{model_suffix}"
        model.write_bytes(model_bytes)
        model_key = digest(model_bytes)
        # the board only matters to synthesis: points that differ in it share one build and one measurement
        bkey = digest("build", model_key, {**asdict(point), "board": None}, settings.inputs, settings.input_shape,
                      code)
        bdir = store.path("builds", bkey)
        if (bdir / "build.json").exists():
            hits += 1
        else:
            bdir.parent.mkdir(parents=True, exist_ok=True)
            fresh = bdir.parent / f".{bkey}.{uuid.uuid4().hex}"  # beside its final place: the rename stays atomic
            build(model, fresh, array=ArrayShape.parse(point.array), inputs=settings.inputs, method=point.method,
                  weight_bits=point.weight_bits, act_bits=point.act_bits, input_shape=settings.input_shape)
            try:  # publish whole; if a concurrent point published the same build first, use that one
                os.rename(fresh, bdir)
            except OSError:
                shutil.rmtree(fresh, ignore_errors=True)
                if not (bdir / "build.json").exists():
                    raise
        b = Build.open(bdir)
        report = json.loads((bdir / "report.json").read_text())
        metrics = {
            "float_accuracy": report["float_accuracy"], "fixed_accuracy": report["fixed_accuracy"],
            "output_sqnr_db": round(report["output_sqnr_db"], 3),
            "weight_kib": report["weight_bits_total"] / 8192, "macs": report["macs"], "pes": report["pes"],
        }
        skey = digest("sim", b.manifest["files"], settings.inputs, code)
        sim = store.get("sim", skey)
        if sim is not None:
            hits += 1
        else:
            r = simulate(bdir, inputs=settings.inputs, work_dir=work / "sim", cache=settings.cache)
            if not r.bit_exact:
                raise HwgenError(f"the RTL differs from the golden model: {r.mismatches[0]}")
            sim = {"cycles_per_inference": r.cycles_per_inference, "pe_utilization": r.pe_utilization}
            store.put("sim", skey, sim)
        metrics.update(sim)
        metrics["bit_exact"] = True
        if settings.synth and point.board:
            from .synth import synth
            s = synth(bdir, point.board, clock_mhz=settings.clock_mhz, output=work / "synth", cache=settings.cache,
                      cycles_per_inference=sim["cycles_per_inference"])
            hits += int(s.cached)
            from boards import board as get_board

            from .fit import record_luts
            if s.luts:
                record_luts(b.hw, get_board(point.board).family, int(s.luts), settings.cache)
            metrics.update({k: getattr(s, k) for k in ("clock_mhz", "fmax_mhz", "meets_timing", "latency_us", "luts", "ffs",
                                              "dsps", "brams", "fits")})
        return PointResult(point, "ok", None, metrics).to_json(), hits
    except HwgenError as exc:  # a misfit or a refused setting: this point's answer, not the sweep's end
        hits += int(bool(getattr(getattr(exc, "result", None), "cached", False)))  # a misfit is cached like a fit
        return PointResult(point, "failed", str(exc).splitlines()[0]).to_json(), hits
    except Exception as exc:  # noqa: BLE001 - a tool crash ends this point only, named in its reason
        first = str(exc).splitlines()[0] if str(exc) else ""
        return PointResult(point, "failed", f"{type(exc).__name__}: {first}").to_json(), hits
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _quality(row: dict) -> float | None:
    return row["fixed_accuracy"] if row.get("fixed_accuracy") is not None else row.get("output_sqnr_db")


def mark_pareto(rows: list[dict]) -> None:
    """`pareto_latency` / `pareto_luts`: no other point is at least as good in quality and cost, better in one."""
    for cost, flag in (("latency_us", "pareto_latency"), ("luts", "pareto_luts")):
        if not any(r.get(cost) is not None for r in rows) and cost == "latency_us":
            cost = "cycles_per_inference"
        ok = [r for r in rows if r["status"] == "ok" and r.get(cost) is not None and _quality(r) is not None]
        for r in rows:
            r[flag] = False
        for r in ok:
            q, c = _quality(r), r[cost]
            r[flag] = not any(_quality(o) >= q and o[cost] <= c and (_quality(o) > q or o[cost] < c) for o in ok)


@dataclass
class SweepResult:
    model: str
    rows: list[dict]
    cache_hits: int
    stages: int
    seconds: float

    def to_json(self) -> dict:
        """The results only: no timings or cache counts, so a local and a Ray run compare equal."""
        return {"schema": SCHEMA, "version": SCHEMA_VERSION, "model": self.model, "points": self.rows}


def sweep(model: str | Path, points: list[SweepPoint], settings: SweepSettings = SweepSettings(), *,
          workers: int | None = None, ray_address: str | None = None, progress: bool = False) -> SweepResult:
    """Run every point (local processes, or Ray tasks when `ray_address` is given) and mark the Pareto points."""
    model = Path(model)
    if not model.exists():
        raise HwgenError(f"model file {str(model)!r} does not exist")
    if not points:
        raise HwgenError("the sweep has no points: give at least one method, width and array")
    model_bytes = model.read_bytes()
    code = source_digest()
    t0 = time.monotonic()
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(points), desc="sweep", unit="point")
    results: dict[int, tuple[dict, int]] = {}
    args = [(p, model_bytes, model.suffix, settings, code) for p in points]
    if ray_address is not None:
        _run_on_ray(args, ray_address, results, bar)
    else:
        workers = workers or max(1, min(len(points), os.cpu_count() or 1))
        if workers == 1:
            for i, a in enumerate(args):
                results[i] = run_point(*a)
                bar and bar.update(1)
        else:
            import multiprocessing
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = {pool.submit(run_point, *a): i for i, a in enumerate(args)}
                for fut in as_completed(futures):
                    results[futures[fut]] = fut.result()
                    bar and bar.update(1)
    if bar is not None:
        bar.close()
    rows = [results[i][0] for i in range(len(points))]
    mark_pareto(rows)
    stages = sum(2 + int(settings.synth and p.board is not None) for p in points)
    return SweepResult(str(model), rows, sum(h for _, h in results.values()), stages, time.monotonic() - t0)


def _run_on_ray(args: list[tuple], address: str, results: dict, bar) -> None:
    try:
        import ray
    except ImportError:
        raise HwgenError("--ray needs the ray package: pip install 'hwgen[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=None if address == "local" else address, log_to_driver=False)
    task = ray.remote(run_point)
    pending = {task.remote(*a): i for i, a in enumerate(args)}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            results[pending.pop(ref)] = ray.get(ref)
            bar and bar.update(1)


# --- reporting ---------------------------------------------------------------------------------

def format_table(result: SweepResult) -> str:
    head = (f"{'point':<30}{'quality':>9}{'cycles':>10}{'util':>7}{'latency us':>12}{'LUT':>7}{'DSP':>5}{'BRAM':>6}"
            f"{'Fmax':>7}  pareto")
    lines = [head, "-" * len(head)]
    for r in result.rows:
        if r["status"] != "ok":
            lines.append(f"{r['label']:<30}  failed: {r['reason']}")
            continue
        q = r["fixed_accuracy"]
        quality = f"{100 * q:.2f}%" if q is not None else f"{r['output_sqnr_db']:.1f}dB"
        mark = ("L" if r["pareto_latency"] else "") + ("R" if r["pareto_luts"] else "")

        def num(key, fmt):
            return format(r[key], fmt) if r.get(key) is not None else "-"
        lines.append(f"{r['label']:<30}{quality:>9}{r['cycles_per_inference']:>10.0f}{100 * r['pe_utilization']:>6.1f}%"
                     f"{num('latency_us', '.1f'):>12}{num('luts', 'd'):>7}{num('dsps', 'd'):>5}{num('brams', 'd'):>6}"
                     f"{num('fmax_mhz', '.1f'):>7}  {mark}")
    lines.append("quality: fixed-point accuracy (or output SQNR vs float); pareto: L = quality vs latency (cycles when "
                 "not synthesized), R = quality vs LUTs")
    return "\n".join(lines)


def plot(result: SweepResult, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in result.rows if r["status"] == "ok"]
    sqnr = any(r["fixed_accuracy"] is None for r in ok)
    ylabel = "output SQNR vs float (dB)" if sqnr else "fixed-point accuracy (%)"
    lat_key = "latency_us" if any(r.get("latency_us") is not None for r in ok) else "cycles_per_inference"
    panels = [(lat_key, "latency (us)" if lat_key == "latency_us" else "cycles per inference", "pareto_latency")]
    if any(r.get("luts") is not None for r in ok):
        panels.append(("luts", "LUTs", "pareto_luts"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    methods = sorted({r["method"] for r in ok})
    colors = dict(zip(methods, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    for ax, (key, xlabel, flag) in zip(axes[0], panels):
        for r in ok:
            if r.get(key) is None:
                continue
            y = _quality(r) * (1 if sqnr else 100)
            ax.scatter(r[key], y, color=colors[r["method"]], s=60 if r[flag] else 25,
                       edgecolors="black" if r[flag] else "none", zorder=3)
            ax.annotate(f"w{r['weight_bits']} {r['array']}", (r[key], y), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        front = sorted((r[key], _quality(r) * (1 if sqnr else 100)) for r in ok if r[flag])
        if front:
            ax.step([f[0] for f in front], [f[1] for f in front], where="post", color="gray", lw=1, zorder=2)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        xs = [r[key] for r in ok if r.get(key)]
        if xs and max(xs) > 20 * min(xs):  # log only where the costs span decades
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
    for m in methods:
        axes[0][0].scatter([], [], color=colors[m], label=m)
    axes[0][0].legend(title="method (outlined: Pareto)", fontsize=8)
    fig.suptitle(f"hwgen sweep: {Path(result.model).name}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(result: SweepResult, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.json").write_text(json.dumps(result.to_json(), indent=1) + "\n")
    (out / "sweep.md").write_text(format_table(result) + "\n")
    plot(result, out / "pareto.png")
