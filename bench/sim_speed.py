"""Verilator compile time and simulation throughput of `hwgen sim`, per model and array.

Run: .venv/bin/python bench/sim_speed.py [--models digits_cnn,resnet8,...] [--arrays 4x4,8x8] [--inputs 5]
     [--out bench/results/sim_speed.json]

For each model and array: `hwgen build`, then `hwgen sim` twice in a fresh
cache. The first run compiles (compile seconds); the second is served from
the cache and gives the throughput: simulated cycles per second of the
simulator itself (cocotb start-up excluded) and the wall time of the whole
run. Every run is also checked bit-exact; a mismatch stops the benchmark.
The MLPerf Tiny ports are calibrated on seeded synthetic data.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

from hwgen.build import build
from hwgen.hwplan import ArrayShape
from hwgen.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]
MODEL_FILES = {"digits_cnn": ROOT / "models" / "digits_cnn.pt", "digits_mlp": ROOT / "models" / "digits_mlp.pt",
               **{name: ROOT / "models" / "tiny" / f"{name}.pt2"
                  for name in ("resnet8", "ds_cnn", "fc_autoencoder", "mobilenet_v1_025")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="digits_cnn,resnet8,ds_cnn,fc_autoencoder,mobilenet_v1_025")
    ap.add_argument("--arrays", default="4x4,8x8")
    ap.add_argument("--inputs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=Path("bench/results/sim_speed.json"))
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            for text in args.arrays.split(","):
                b = build(MODEL_FILES[model], Path(tmp) / f"{model}_{text}", array=ArrayShape.parse(text),
                          inputs=args.inputs)
                cache = Path(tmp) / f"cache_{model}_{text}"
                t0 = time.monotonic()
                first = simulate(b.path, work_dir=Path(tmp) / "sim1", cache=cache)
                first_wall = time.monotonic() - t0
                t0 = time.monotonic()
                second = simulate(b.path, work_dir=Path(tmp) / "sim2", cache=cache)
                second_wall = time.monotonic() - t0
                for r in (first, second):
                    if not r.bit_exact:
                        raise SystemExit(f"{model} {text}: not bit-exact: {r['mismatches'][:1]}")
                rows.append({"model": model, "array": text, "inputs": args.inputs,
                             "cycles_per_inference": second.cycles_per_inference,
                             "compile_seconds": first.compile_seconds, "first_run_seconds": first_wall,
                             "cached_run_seconds": second_wall, "cached": second.compile_cached,
                             "simulated_cycles": second.simulated_cycles,
                             "cycles_per_second": second.cycles_per_second,
                             "sim_seconds_with_startup": second.sim_seconds})
                print(f"{model} {text}: {rows[-1]['cycles_per_second'] / 1e3:.0f}k cycles/s", flush=True)
    head = f"{'model':<18}{'array':>6}{'cyc/inf':>10}{'compile s':>11}{'1st run s':>11}{'2nd run s':>11}{'cycles/s':>11}"
    print("\n" + head + "\n" + "-" * len(head))
    for r in rows:
        print(f"{r['model']:<18}{r['array']:>6}{r['cycles_per_inference']:>10.0f}{r['compile_seconds']:>11.1f}"
              f"{r['first_run_seconds']:>11.1f}{r['cached_run_seconds']:>11.1f}{r['cycles_per_second'] / 1e3:>10.0f}k")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
