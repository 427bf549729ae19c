"""Resources, Fmax and latency per board, model and array size, from real yosys + nextpnr runs.

Run: .venv/bin/python bench/synth.py [--boards icebreaker,ulx3s-85f] [--arrays 2x2,4x4,auto] [--out bench/results/synth.json]
     [--before an/earlier/synth.json]   (adds a before/after table of Fmax, LUTs and FFs)
`auto` is the array `hwgen build --array auto --board` picks for each board.
Arrays whose resource estimate (hwgen.fit) does not fit a board are listed
as skipped; a measured misfit is reported as such. Latency uses the
cycles per inference measured by `hwgen sim` (one input) on the same build.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from boards import board as get_board
from hwgen.build import build
from hwgen.fit import estimate, fits
from hwgen.hwplan import ArrayShape
from hwgen.simulate import simulate
from hwgen.synth import FitError, synth

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="digits_cnn,digits_mlp")
    ap.add_argument("--boards", default="icebreaker,ulx3s-85f")
    ap.add_argument("--arrays", default="2x2,4x4,8x8")
    ap.add_argument("--out", type=Path, default=Path("bench/results/synth.json"))
    ap.add_argument("--before", type=Path, help="an earlier run's JSON: print Fmax, LUTs and FFs before and after")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        boards = args.boards.split(",")
        for model in args.models.split(","):
            for text, group in _builds(args.arrays.split(","), boards):
                b = build(ROOT / "models" / f"{model}.pt", Path(tmp) / f"{model}_{text}_{group[0]}",
                          array=text if text == "auto" else ArrayShape.parse(text), board=group[0] if text == "auto"
                          else None, inputs=1)
                sim = simulate(b.path, work_dir=Path(tmp) / "sim")
                for name in group:
                    brd = get_board(name)
                    est = estimate(b.hw, brd)
                    row = {"model": model, "array": f"{b.hw.rows}x{b.hw.cols}", "auto": text == "auto",
                           "board": name, "estimate": est, "cycles": sim.cycles_per_inference}
                    if not fits(est, brd):
                        rows.append({**row, "status": "skipped (estimate does not fit)"})
                        print(rows[-1], flush=True)
                        continue
                    try:
                        r = synth(b.path, name, output=Path(tmp) / f"syn_{model}_{text}_{name}")
                        row.update(r.to_json(), status="fits" if r.meets_timing else "fits, misses timing")
                    except FitError as exc:
                        row.update(exc.result, status="does not fit")
                    rows.append(row)
                    print({k: row.get(k) for k in ("model", "array", "board", "status", "luts", "brams", "dsps",
                                                   "fmax_mhz")}, flush=True)
    print(f"\n{'model':<11}{'board':<12}{'array':>6}{'LUT':>7}{'FF':>7}{'DSP':>5}{'BRAM':>5}{'Fmax':>7}"
          f"{'cycles':>8}{'lat us':>9}  status")
    for r in rows:
        if "luts" not in r:
            print(f"{r['model']:<11}{r['board']:<12}{r['array']:>6}  est. {r['estimate']['luts']} LUTs, "
                  f"{r['estimate']['brams']} BRAMs: {r['status']}")
            continue
        fmax = f"{r['fmax_mhz']:.1f}" if r.get("fmax_mhz") else "-"
        lat = f"{r['cycles'] / r['clock_mhz']:.0f}" if r.get("clock_mhz") else "-"
        print(f"{r['model']:<11}{r['board']:<12}{r['array']:>6}{r['luts'] or '-':>7}{r['ffs'] or '-':>7}"
              f"{r['dsps'] if r['dsps'] is not None else '-':>5}{r['brams'] if r['brams'] is not None else '-':>5}"
              f"{fmax:>7}{r['cycles']:>8.0f}{lat:>9}  {r['status']} (est. {r['estimate']['luts']} LUTs)")
    print("latency at the board oscillator clock (hwgen synth without --clock); Fmax from nextpnr")
    if args.before:
        compare(json.loads(args.before.read_text()), rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {args.out}")


def _builds(arrays: list[str], boards: list[str]):
    """(array, the boards its build is synthesized for): a fixed shape is built once for every board, `auto` once
    per board (the array `hwgen build --array auto --board` picks for it)."""
    for text in arrays:
        yield from (((text, [name]) for name in boards) if text == "auto" else [(text, boards)])


def compare(before: list[dict], after: list[dict]) -> None:
    """Fmax, LUTs and FFs of the same (model, board, array) in two runs of this bench."""
    old = {(r["model"], r["board"], r["array"]): r for r in before}
    print(f"\n{'model':<11}{'board':<12}{'array':>6}{'Fmax before':>13}{'after':>8}{'LUT before':>12}{'after':>8}"
          f"{'FF before':>11}{'after':>8}")
    for r in after:
        b = old.get((r["model"], r["board"], r["array"]))
        if b is None or "luts" not in r or "luts" not in b:
            continue
        f = [f"{x['fmax_mhz']:.1f}" if x.get("fmax_mhz") else "-" for x in (b, r)]
        print(f"{r['model']:<11}{r['board']:<12}{r['array']:>6}{f[0]:>13}{f[1]:>8}{b['luts'] or '-':>12}"
              f"{r['luts'] or '-':>8}{b['ffs'] or '-':>11}{r['ffs'] or '-':>8}")


if __name__ == "__main__":
    main()
