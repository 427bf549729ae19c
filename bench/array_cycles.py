"""Measured tile-engine cycles vs the ideal M*K*N / (rows*cols), from Verilator simulation.

Run: .venv/bin/python bench/array_cycles.py [--out bench/results/array.json]
Utilization = ideal cycles / measured cycles, both counted from the first
k-step accepted to the last result row leaving (no stalls, no backpressure).
"""
from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from hwgen.verilog import emit_verilog
from sim import runner
from sim.engine_model import EngineConfig, random_problem, tile_cycles_model

CASES = [  # rows, cols, M, K, N
    (2, 2, 16, 64, 16), (4, 4, 16, 9, 16), (4, 4, 64, 72, 16), (4, 4, 64, 256, 16),
    (8, 8, 64, 9, 8), (8, 8, 64, 72, 16), (8, 8, 64, 256, 16), (8, 8, 1, 256, 10),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench/results/array.json"))
    args = ap.parse_args()
    rows_out = []
    with tempfile.TemporaryDirectory() as tmp:
        for rows, cols, m, k, n in CASES:
            cfg = EngineConfig(rows, cols, 8, 8, False, 8 + 8 + 9, 8, 24, 2)
            prob = random_problem(np.random.default_rng(0), cfg, m, k, n)
            build = runner.build(emit_verilog(cfg.build(), "tile_engine"), "tile_engine", Path(tmp))
            res = runner.run(build, "tile_engine", "sim.tb_engine",
                             {"config": cfg.to_json(), "problems": [prob.to_json()], "stall": 0.0}, name="bench")
            if res.failures or res.report["mismatches"]:
                raise SystemExit(f"{rows}x{cols} {m}x{k}x{n}: not bit-exact: {res.report['mismatches'][:1]}")
            measured = res.report["problems"][0]["cycles"]
            ideal = m * k * n / (rows * cols)
            rows_out.append({"array": f"{rows}x{cols}", "M": m, "K": k, "N": n, "cycles": measured,
                             "model_cycles": tile_cycles_model(cfg, m, k, n), "ideal_cycles": ideal,
                             "utilization": ideal / measured})
    print(f"{'array':<7}{'M':>5}{'K':>5}{'N':>5}{'cycles':>9}{'model':>8}{'ideal':>9}{'util':>8}")
    for r in rows_out:
        print(f"{r['array']:<7}{r['M']:>5}{r['K']:>5}{r['N']:>5}{r['cycles']:>9}{r['model_cycles']:>8}"
              f"{r['ideal_cycles']:>9.0f}{100 * r['utilization']:>7.1f}%")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows_out, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
