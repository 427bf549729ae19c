"""`hwgen` command line: thin shells over hwgen.api; HwgenError -> one line on stderr, exit 1."""
from __future__ import annotations

import functools
import json
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .errors import HwgenError

if TYPE_CHECKING:  # the result types, for annotations only: the CLI imports its stages inside the commands
    from .api import Evaluation
    from .simulate import SimulationResult
    from .synth import SynthResult

# Heavy packages (torch, Amaranth, numpy) load inside the commands that use them: `hwgen --help` stays instant.


def _shape(_ctx, _param, value):
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers like 1,8,8, got {value!r}") from None


def _overrides(_ctx, _param, values):
    from .quant.config import parse_override

    try:
        return dict(parse_override(v) for v in values)
    except HwgenError as exc:
        raise click.BadParameter(str(exc)) from None


def model_options(f):
    f = click.option("--trust", is_flag=True, help="Allow unpickling a full torch.save'd module. Only for files you trust.")(f)
    f = click.option("--input-shape", callback=_shape, help="Per-sample input shape C,H,W when the file does not record it.")(f)
    f = click.argument("model", type=click.Path(dir_okay=False, path_type=Path))(f)
    return f


def quant_options(f):
    f = click.option("--bits", type=int, default=8, show_default=True, help="Default bit-width of weights and activations.")(f)
    f = click.option("--weight-bits", type=int, help="Weight bit-width (overrides --bits).")(f)
    f = click.option("--act-bits", type=int, help="Activation bit-width (overrides --bits).")(f)
    f = click.option("--layer", "overrides", multiple=True, callback=_overrides,
                     help="Per-layer bits, e.g. --layer conv1=w4a8 --layer fc=w6. Repeatable.")(f)
    f = click.option("--method", type=click.Choice(["range", "sqnr", "analytic", "tqt"]), default="range",
                     show_default=True, help="Format assignment method (docs/precision.md).")(f)
    f = click.option("--weight-budget", type=click.IntRange(1), help="sqnr: total weight bits to allocate across layers.")(f)
    f = click.option("--cost", type=click.Choice(["params", "hardware"]), default="params", show_default=True,
                     help="sqnr allocation cost: parameter bits (Lin et al.) or packed weight memory (2/4/8/16-bit).")(f)
    f = click.option("--target-mismatch", type=float, default=0.01, show_default=True,
                     help="analytic: bound on P(fixed-point decision differs from float).")(f)
    f = click.option("--tqt-epochs", type=click.IntRange(1), default=4, show_default=True,
                     help="tqt: quantization-aware fine-tuning epochs.")(f)
    f = click.option("--per-channel", is_flag=True, help="Per-output-channel weight formats.")(f)
    f = click.option("--percentile", type=float, help="Clip activation ranges at this |x| percentile instead of max.")(f)
    f = click.option("--plan", "plan", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Use this (edited) plan.json instead of assigning formats.")(f)
    f = click.option("--calib", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                     help="Calibration data: .npz with x (and optionally y). Default: bundled digits.")(f)
    return f


def _quant_kwargs(kw: dict) -> dict:
    return {k: kw[k] for k in ("bits", "weight_bits", "act_bits", "overrides", "method", "per_channel",
                               "percentile", "plan", "calib", "trust", "input_shape", "weight_budget", "cost",
                               "target_mismatch", "tqt_epochs")}


def handle_errors(f):
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        def show(message, category, *_a, **_k):
            click.echo(f"hwgen: warning: {message}", err=True)

        warnings.showwarning = show
        try:
            return f(*args, **kwargs)
        except HwgenError as exc:
            click.echo(f"hwgen: error: {exc}", err=True)
            sys.exit(1)
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hwgen")
def main() -> None:
    """hwgen: trained PyTorch (or ONNX / QONNX) model -> verified fixed-point FPGA accelerator, open tools only."""


@main.command()
@model_options
@quant_options
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=Path("plan.json"),
              show_default=True, help="Where to write the plan.")
@handle_errors
def quantize(model, output, **kw):
    """Calibrate MODEL and write its per-layer power-of-2 quantization plan (editable JSON)."""
    from . import api

    qm = api.quantize(model, progress=sys.stderr.isatty(), **_quant_kwargs(kw))
    qm.plan.save(output)
    click.echo(f"wrote {output}: {len(qm.plan.layers)} layers, method {qm.plan.method}, "
               f"{qm.weight_bits_total} weight bits")


@main.command("eval")
@model_options
@quant_options
@click.option("--limit", type=int, help="Evaluate only the first N test inputs.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@handle_errors
def eval_(model, limit, as_json, **kw):
    """Float vs fixed-point accuracy, per-layer formats, saturations and weight memory of MODEL."""
    from . import api

    report = api.evaluate(model, limit=limit, progress=sys.stderr.isatty() and not as_json, **_quant_kwargs(kw))
    if as_json:
        click.echo(json.dumps(report.to_json()))
        return
    click.echo(format_eval(report))


def _array(_ctx, _param, value):
    if value == "auto":
        return value
    try:
        from .hwplan import ArrayShape

        return ArrayShape.parse(value)
    except HwgenError as exc:
        raise click.BadParameter(str(exc)) from None


@main.command("build")
@model_options
@quant_options
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("build"),
              show_default=True, help="Build directory (replaced as a whole; never left half-written).")
@click.option("--array", default="4x4", show_default=True, callback=_array,
              help="Systolic array size ROWSxCOLS, or auto: the fastest (by the cycle model) that fits --board.")
@click.option("--board", help="Target board: icebreaker, ulx3s-85f, orangecrab-25f. --array auto sizes the array to it; a plan whose memories do not fit it is refused.")
@click.option("--vectors", type=click.IntRange(1), default=100, show_default=True,
              help="Test inputs to store with every layer's golden outputs.")
@click.option("--json", "as_json", is_flag=True, help="Print the build report as one JSON object.")
@handle_errors
def build_(model, output, array, board, vectors, as_json, **kw):
    """Quantize MODEL and generate its accelerator: plan, golden vectors, hardware plan, Verilog, report.

    MODEL: a TorchScript (.pt) or torch.export (.pt2) archive, or an ONNX file (.onnx, opset >= 13); a QONNX
    file exported from Brevitas keeps the formats of its power-of-2 quantizers.
    """
    from .build import build

    b = build(model, output, array=array, inputs=vectors, board=board, progress=sys.stderr.isatty() and not as_json,
              **_quant_kwargs(kw))
    report = json.loads((b.path / "report.json").read_text())
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo((b.path / "report.md").read_text().rstrip())
    click.echo(f"\nwrote {b.path}/: {', '.join(sorted(b.manifest['files']))}, build.json")
    click.echo(f"next: hwgen sim {b.path}")


@main.command("sim")
@click.argument("build_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--inputs", type=click.IntRange(1), help="Check only the first N stored vectors (default: all).")
@click.option("--stall", type=click.FloatRange(0, 0.9), default=0.0, show_default=True,
              help="Random gaps on the input stream and backpressure on the output, probability per cycle "
                   "(driven from cocotb every cycle: much slower than the default fast mode).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random stalls.")
# hwgen.simulate.SIM_FORMS, spelled out: the CLI imports no Amaranth
@click.option("--dsp", type=click.Choice(["generic", "ecp5", "ice40"]), default="generic", show_default=True,
              help="Form of the design: 'ecp5' simulates the registered MULT18X18D and DP16KD instances that "
                   "`hwgen synth` builds for an ECP5 board, with hwgen's behavioural models of those cells; "
                   "'ice40' the forms it builds for an iCE40 board (two-entry FIFOs, LUT parameter ROMs, "
                   "SB_RAM40_4K-deep banks).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@handle_errors
def sim_(build_dir, inputs, stall, seed, dsp, as_json):
    """Prove BUILD_DIR's Verilog bit-exact against the golden model on Verilator (cocotb), layer by layer.

    The compiled simulator is cached by design digest in $HWGEN_CACHE (default
    ~/.cache/hwgen), so a second run of the same design starts at once.
    """
    from .simulate import simulate

    r = simulate(build_dir, inputs=inputs, stall=stall, seed=seed, dsp=dsp,
                 progress=sys.stderr.isatty() and not as_json)
    if as_json:
        click.echo(json.dumps(r.to_json()))
    else:
        click.echo(format_sim(r))
    if not r.bit_exact:
        if not as_json:
            click.echo(f"hwgen: error: the RTL differs from the golden model; simulator log: {r.log}", err=True)
        sys.exit(1)


def _clock(_ctx, _param, value):
    if value is None or value == "max":
        return value
    try:
        mhz = float(value)
    except ValueError:
        raise click.BadParameter(f"expected a frequency in MHz or max, got {value!r}") from None
    if mhz <= 0:
        raise click.BadParameter(f"the clock must be above 0 MHz, got {value!r}")
    return mhz


def _seeds(_ctx, _param, value):
    """`--seed`: one seed, a comma-separated list, or a range a-b (both ends included)."""
    if value is None:
        return None
    seeds = []
    try:
        for part in value.split(","):
            low, _, high = part.strip().partition("-")
            seeds += range(int(low), int(high or low) + 1)
    except ValueError:
        raise click.BadParameter(f"expected a seed, a list such as 0,1,2 or a range such as 0-3, got {value!r}") \
            from None
    if not seeds:
        raise click.BadParameter(f"{value!r} names no seed (a range runs from low to high)")
    return seeds[0] if len(seeds) == 1 else seeds


@main.command("synth")
@click.argument("build_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--board", required=True, help="icebreaker, ulx3s-85f or orangecrab-25f.")
@click.option("--clock", "clock_mhz", callback=_clock,
              help="Clock in MHz, or max: the highest PLL clock 5% below the Fmax the tools report, that meets "
                   "timing (two or more place-and-route runs). Other than the board oscillator, a PLL makes it "
                   "(default: the oscillator).")
@click.option("--baud", type=click.IntRange(1200),
              help="Host-link UART baud rate. Default: the fastest standard rate up to 3 Mbaud (what the boards' USB "
                   "UARTs carry) that the clock makes within 3%.")
@click.option("--seed", "seed", callback=_seeds, metavar="SEEDS",
              help="nextpnr's placement seed (default: its own). On a nearly full device Fmax moves by up to about "
                   "10% from seed to seed: several (0,1,2 or 0-3) place and route once each, as many at once as "
                   "there are CPUs, and the fastest is kept.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@handle_errors
def synth_(build_dir, board, clock_mhz, baud, seed, as_json):
    """Bitstream for BUILD_DIR on a board (yosys + nextpnr + icepack/ecppack): resources, Fmax, latency."""
    from .synth import FitError, synth, synth_max_clock

    try:
        run = synth_max_clock if clock_mhz == "max" else functools.partial(synth, clock_mhz=clock_mhz)
        r = run(build_dir, board, baud=baud, seed=seed, progress=sys.stderr.isatty() and not as_json)
    except FitError as exc:
        if as_json:
            click.echo(json.dumps(exc.result.to_json()))
        raise
    click.echo(json.dumps(r.to_json()) if as_json else format_synth(r))


def format_synth(r: SynthResult) -> str:
    def use(key):
        used = getattr(r, key)
        return f"{used}/{getattr(r, key + '_available')}" if used is not None else "-"
    lines = [f"{r.device}, array {r.array}: {'fits' if r.fits else 'DOES NOT FIT'}",
             f"  LUTs {use('luts')}  FFs {use('ffs')}  DSPs {use('dsps')}  BRAMs {use('brams')}"]
    if r.fmax_mhz:
        verdict = "meets" if r.meets_timing else "MISSES"
        source = f"PLL {r.pll}" if r.pll else "board oscillator"
        placed = f", nextpnr seed {r.seed}" if r.seed is not None else ""
        if r.seeds_tried:
            placed += " of " + ", ".join(f"{seed}: {fmax:.1f}" if fmax else f"{seed}: -"
                                         for seed, fmax in r.seeds_tried.items())
        lines.append(f"  Fmax {r.fmax_mhz:.1f} MHz ({verdict} the {r.clock_mhz:g} MHz clock, {source}{placed})")
        if not r.meets_timing:
            lines.append("  timing: lower the clock, use a smaller --array, or fewer bits (narrower adders)")
    if r.latency_us:
        lines.append(f"  latency {r.cycles_per_inference:.0f} cycles = {r.latency_us:.1f} us at "
                     f"{r.clock_mhz:g} MHz ({r.latency_at_fmax_us:.1f} us at Fmax), compute only")
        lines.append(f"  end to end over the UART at {r.baud} baud: {r.end_to_end_latency_us:.1f} us "
                     f"(link {r.link_us:.1f} us); back to back {r.throughput_per_s:.0f} inferences/s, "
                     f"{r.throughput_bound}-bound")
    lines.append(f"  bitstream {r.bitstream}")
    return "\n".join(lines)


@main.command("sweep")
@click.argument("model", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--method", "methods", default="range", show_default=True,
              help="Comma-separated precision methods: range, sqnr, analytic, tqt.")
@click.option("--bits", "bits_text", default="4,8", show_default=True, help="Weight widths: 2..8 or 4,6,8.")
@click.option("--act-bits", type=click.IntRange(2, 16), default=8, show_default=True, help="Activation width.")
@click.option("--array", "arrays", default="4x4", show_default=True, help="Comma-separated arrays, e.g. 2x2,4x4,8x8.")
@click.option("--board", "boards", default=None,
              help="Comma-separated boards to synthesize for (icebreaker, ulx3s-85f, orangecrab-25f); "
                   "without it, cycles only.")
@click.option("--clock", "clock_mhz", type=float, help="Clock in MHz for synthesis (default: the board oscillator).")
@click.option("--inputs", type=click.IntRange(1), default=2, show_default=True, help="Vectors simulated per point.")
@click.option("--input-shape", callback=_shape, help="Per-sample input shape C,H,W when the file does not record it.")
@click.option("--workers", type=click.IntRange(1), default=None, help="Local worker processes (default: CPU count).")
@click.option("--ray", "ray_address", default=None,
              help="Run the points as Ray tasks: a cluster address, 'auto' (the cluster this machine joined) "
                   "or 'local' (start one here).")
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Cache directory (default: $HWGEN_CACHE or ~/.cache/hwgen); share it between runs and machines.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=Path("sweep"),
              show_default=True, help="Where to write sweep.json, sweep.md and pareto.png.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as one JSON object.")
@handle_errors
def sweep_(model, methods, bits_text, act_bits, arrays, boards, clock_mhz, inputs, input_shape, workers, ray_address,
           cache, output, as_json):
    """Sweep MODEL over methods x weight widths x arrays (x boards): accuracy vs latency vs resources, Pareto points.

    Every stage is cached by a digest of its inputs, so a repeated or extended
    sweep computes only what is new. A failed point (misfit, tool error) is
    recorded with its reason and the sweep goes on.
    """
    from boards import board as get_board

    from . import sweep as sw
    from .hwplan import ArrayShape

    method_list = [m.strip() for m in methods.split(",") if m.strip()]
    array_list = [str(ArrayShape.parse(a.strip())) for a in arrays.split(",") if a.strip()]
    board_list = [get_board(b.strip()).name for b in boards.split(",")] if boards else [None]
    shape = tuple(input_shape) if input_shape else None
    points = sw.grid(method_list, sw.parse_bits(bits_text), array_list, board_list, act_bits)
    settings = sw.SweepSettings(inputs=inputs, synth=boards is not None, clock_mhz=clock_mhz,
                                cache=str(cache) if cache else None, input_shape=shape)
    result = sw.sweep(model, points, settings, workers=workers, ray_address=ray_address,
                      progress=sys.stderr.isatty() and not as_json)
    sw.write(result, output)
    if as_json:
        click.echo(json.dumps(result.to_json()))
        return
    click.echo(sw.format_table(result))
    click.echo(f"\n{len(points)} points in {result.seconds:.1f} s; {result.cache_hits} of {result.stages} stages "
               f"served from the cache")
    click.echo(f"wrote {output}/sweep.json, sweep.md, pareto.png")


@main.command("run")
@click.argument("inputs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--board", required=True, help="The board the build was synthesized for (for the clock rate).")
@click.option("--port", required=True, help="Serial device, e.g. /dev/ttyUSB1 (pyserial URLs work too).")
@click.option("--build", "build_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=Path("build"), show_default=True, help="The build directory flashed on the board.")
@click.option("--baud", type=click.IntRange(1200),
              help="UART baud rate. Default: the one `hwgen synth` used for this board (its synth.json).")
@click.option("--timeout", type=float, default=2.0, show_default=True, help="Seconds to wait for each response.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per input.")
@handle_errors
def run_(inputs, board, port, build_dir, baud, timeout, as_json):
    """Send INPUTS (.npy, one sample or a batch, real values) to a board over UART; print class and logits."""
    from .host import run_on_board

    for row in run_on_board(build_dir, inputs, port, baud=baud, timeout=timeout, board_name=board):
        click.echo(json.dumps(row) if as_json else
                   f"input {row['input']}: class {row['label']}  logits {row['logits_real']}")


def format_sim(r: SimulationResult) -> str:
    lines = [f"{r.build}: array {r.array}, {r.inputs} inputs, "
             + ("BIT-EXACT on every layer" if r.bit_exact else f"{len(r.mismatches)} inferences MISMATCH")]
    for bad in r.mismatches[:3]:
        lines.append(f"  first mismatch: inference {bad['inference']}, layer {bad['layer']}, "
                     + (f"element {bad.get('coord')} (flat {bad.get('index')}): got {bad['got']}, want {bad['want']}"
                        if bad.get("index") is not None else f"got {bad.get('got')}, want {bad.get('want')}"
                        + (f" ({bad['writes']} writes of {bad['size']})" if "writes" in bad else "")))
    lines.append(f"cycles per inference {r.cycles_per_inference:.0f} (ideal {r.ideal_cycles:.0f} = MACs / PEs), "
                 f"PE utilization {100 * r.pe_utilization:.1f}%")
    compiled = "compile cached" if r.compile_cached else f"compiled in {r.compile_seconds:.1f} s"
    lines.append(f"simulator: {r.mode} mode, {r.simulated_cycles} cycles at {r.cycles_per_second / 1e3:.0f}k cycles/s, "
                 f"{r.sim_seconds:.1f} s with start-up; {compiled}")
    if r.rtl_accuracy is not None:
        lines.append(f"accuracy from the RTL's outputs {100 * r.rtl_accuracy:.2f}% "
                     f"(golden {100 * r.golden_accuracy:.2f}%) on {r.inputs} inputs")
    head = f"{'layer':<18}{'cycles':>8}{'ideal':>9}{'util':>8}"
    lines += [head, "-" * len(head)]
    for row in r.layers:
        util = f"{100 * row.pe_utilization:.1f}%" if row.pe_utilization else "-"
        lines.append(f"{row.layer[:17]:<18}{row.cycles:>8}{row.ideal_cycles:>9.0f}{util:>8}")
    return "\n".join(lines)


def _fmt(obj) -> str:
    from .fixed import Fixed

    return "-" if obj is None else str(Fixed.from_json(obj))


def format_eval(r: Evaluation) -> str:
    lines = [f"model {r.model}  method {r.method}  data {r.dataset} ({r.inputs} inputs)"]
    if r.float_accuracy is not None:
        lines.append(f"accuracy: float {100 * r.float_accuracy:.2f}%  fixed {100 * r.fixed_accuracy:.2f}%  "
                     f"(delta {100 * (r.fixed_accuracy - r.float_accuracy):+.2f} pp)")
    lines.append(f"output SQNR vs float: {r.output_sqnr_db:.1f} dB   weights {r.weight_bits_total} bits "
                 f"({r.weight_bits_total / 8192:.2f} KiB), biases {r.bias_bits_total} bits   input {_fmt(r.input_format)}")
    head = f"{'layer':<14}{'op':<10}{'shape':<14}{'in':<9}{'weight':<9}{'bias':<9}{'acc':>4}  {'out':<9}{'MACs':>8}{'sat':>6}"
    lines += [head, "-" * len(head)]
    for row in r.layers:
        lines.append(f"{row['name'][:13]:<14}{row['op']:<10}{'x'.join(map(str, row['shape'])):<14}{_fmt(row['in'][0]):<9}"
                     f"{_fmt(row['weight']) + ('/ch' if row['weight_channel_frac'] else ''):<9}{_fmt(row['bias']):<9}"
                     f"{row['acc_bits'] or '-':>4}  {_fmt(row['out']):<9}{row['macs']:>8}{row['saturations']:>6}")
    lines.append("formats: s|u<bits>.<frac> = signed|unsigned, value = q * 2**-frac")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
