"""The design-space sweep of digits_cnn on the ULX3S-85F, then the same sweep again from the cache.

Run: .venv/bin/python bench/sweep.py [--methods range,sqnr,tqt] [--bits 4,6,8] [--arrays 4x4,8x8]
     [--board ulx3s-85f] [--ray ADDRESS] [--out bench/results/sweep_digits_cnn]

3 methods x 3 weight widths x 2 arrays = 18 points: each is built, measured
on Verilator and placed and routed for the ECP5 (minutes per point on this
2-core machine). The second pass must be served from the cache; the script
prints both wall times and checks that the two results are identical.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

from hwgen import sweep as sw

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=ROOT / "models" / "digits_cnn.pt")
    ap.add_argument("--methods", default="range,sqnr,tqt")
    ap.add_argument("--bits", default="4,6,8")
    ap.add_argument("--arrays", default="4x4,8x8")
    ap.add_argument("--board", default="ulx3s-85f")
    ap.add_argument("--ray", default=None)
    ap.add_argument("--cache", default=None, help="default: $HWGEN_CACHE or ~/.cache/hwgen")
    ap.add_argument("--out", type=Path, default=Path("bench/results/sweep_digits_cnn"))
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    points = sw.grid(args.methods.split(","), sw.parse_bits(args.bits), args.arrays.split(","), [args.board])
    settings = sw.SweepSettings(inputs=2, cache=args.cache)
    first = sw.sweep(args.model, points, settings, ray_address=args.ray, progress=True)
    sw.write(first, args.out)
    print(sw.format_table(first))
    again = sw.sweep(args.model, points, settings, ray_address=args.ray)
    same = json.dumps(first.to_json(), sort_keys=True) == json.dumps(again.to_json(), sort_keys=True)
    summary = {"points": len(points), "first_seconds": first.seconds, "first_cache_hits": first.cache_hits,
               "rerun_seconds": again.seconds, "rerun_cache_hits": again.cache_hits, "stages": again.stages,
               "identical": same}
    (args.out / "timing.json").write_text(json.dumps(summary, indent=1) + "\n")
    print(f"\n{len(points)} points: first run {first.seconds:.0f} s ({first.cache_hits} of {first.stages} stages "
          f"cached); rerun {again.seconds:.1f} s ({again.cache_hits} of {again.stages} cached), "
          f"results {'identical' if same else 'DIFFERENT'}")
    print(f"wrote {args.out}/sweep.json, sweep.md, pareto.png, timing.json")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
