"""Low bit-widths in hardware: the same model at 8 and at 4 bits on one board, with and without PEs whose
multipliers are built from logic cells.

Run: .venv/bin/python bench/narrow.py [--model models/digits_cnn.pt] [--board orangecrab-25f] [--sim N] [--synth]
                                      [--out bench/results/narrow.json]

Rows: each bit-width at the fastest all-DSP array (`choose_array(..., logic_multipliers=False)`), and at
`--array auto`, which may add PEs past the board's DSPs where the operands are narrow (hwgen.fit:
LUT_MULTIPLIER_BITS, LUT_PE_GAIN; docs/accelerator.md "PEs in logic cells"). Accuracy float vs fixed on the
bundled test split (none for a model calibrated on synthetic data), the output SQNR, the cycle model's
estimate, `--sim N` measured cycles on Verilator in the board's form (bit-exact or the benchmark stops),
`--synth` yosys + nextpnr for LUT/FF/DSP/BRAM and Fmax (a few minutes per row on the OrangeCrab). Latency
is measured cycles (else estimated) at Fmax.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from pathlib import Path

from boards import board as get_board
from hwgen import api, fit
from hwgen.build import build
from hwgen.hwplan import ArrayShape, estimate_cycles
from hwgen.simulate import simulate
from hwgen.synth import synth


def arrays(model: Path, board: str, bits: int) -> list[ArrayShape]:
    """The fastest all-DSP array, then `--array auto`'s where it differs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qm = api.quantize(model, bits=bits)
    shapes = [fit.choose_array(qm, get_board(board), logic_multipliers=logic)[0] for logic in (False, True)]
    return shapes[:1] if shapes[1] == shapes[0] else shapes


def measure(model: Path, board: str, bits: int, shape: ArrayShape, tmp: Path, sim_inputs: int,
            run_synth: bool) -> dict:
    brd = get_board(board)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = build(model, tmp / f"{bits}_{shape}", array=shape, board=board, bits=bits, inputs=max(sim_inputs, 1))
    report = json.loads((b.path / "report.json").read_text())
    row = {"model": model.stem, "board": board, "bits": bits, "array": f"{shape.rows}x{shape.cols}",
           "pes": b.hw.pes, "lut_pes": b.hw.lut_pes, "w_bits": b.hw.w_bits, "a_bits": b.hw.a_bits,
           "float_accuracy": report["float_accuracy"], "fixed_accuracy": report["fixed_accuracy"],
           "output_sqnr_db": report["output_sqnr_db"],
           "estimated_cycles": sum(c.estimate for c in estimate_cycles(b.hw))}
    if sim_inputs:
        r = simulate(b.path, inputs=sim_inputs, work_dir=tmp / "sim", dsp=brd.family)
        if not r.bit_exact:
            raise SystemExit(f"{bits} bits, {row['array']}: not bit-exact: {r.mismatches[:1]}")
        row |= {"cycles": r.cycles_per_inference, "pe_utilization": r.pe_utilization}
    if run_synth:
        s = synth(b.path, board)
        row |= {k: getattr(s, k) for k in ("fits", "luts", "ffs", "dsps", "brams", "fmax_mhz", "meets_timing")}
        row["latency_us_at_fmax"] = row.get("cycles", row["estimated_cycles"]) / s.fmax_mhz
    return row


def print_table(rows: list[dict]) -> None:
    print(f"{'bits':>4}{'array':>7}{'in logic':>9}{'accuracy':>10}{'SQNR':>8}{'est. cycles':>13}{'cycles':>8}{'util':>7}"
          f"{'LUT':>7}{'FF':>7}{'DSP':>5}{'BRAM':>5}{'Fmax':>8}{'latency':>11}")
    for r in rows:
        cycles = f"{r['cycles']:.0f}" if "cycles" in r else "-"
        util = f"{100 * r['pe_utilization']:.1f}%" if "pe_utilization" in r else "-"
        fmax = f"{r['fmax_mhz']:.1f}" if r.get("fmax_mhz") else "-"
        lat = f"{r['latency_us_at_fmax']:.1f} us" if "latency_us_at_fmax" in r else "-"
        res = [str(r.get(k, "-")) for k in ("luts", "ffs", "dsps", "brams")]
        acc = f"{100 * r['fixed_accuracy']:.1f}%" if r["fixed_accuracy"] is not None else "-"
        print(f"{r['bits']:>4}{r['array']:>7}{r['lut_pes']:>9}{acc:>10}{r['output_sqnr_db']:>6.1f}dB"
              f"{r['estimated_cycles']:>13}{cycles:>8}{util:>7}{res[0]:>7}{res[1]:>7}{res[2]:>5}{res[3]:>5}"
              f"{fmax:>8}{lat:>11}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=Path("models/digits_cnn.pt"))
    ap.add_argument("--board", default="orangecrab-25f")
    ap.add_argument("--bits", default="8,4", help="comma-separated bit-widths of weights and activations")
    ap.add_argument("--sim", type=int, default=0, metavar="N", help="inputs per row on Verilator (0: estimate only)")
    ap.add_argument("--synth", action="store_true", help="place and route every row (minutes each)")
    ap.add_argument("--out", type=Path, default=Path("bench/results/narrow.json"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for bits in (int(b) for b in args.bits.split(",")):
            for shape in arrays(args.model, args.board, bits):
                rows.append(measure(args.model, args.board, bits, shape, Path(tmp), args.sim, args.synth))
    print(f"{args.model.name} on {args.board}")
    print_table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
