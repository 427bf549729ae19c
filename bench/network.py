"""Whole-network cycles per inference and PE utilization, per layer, measured on Verilator.

Run: .venv/bin/python bench/network.py [--arrays 2x2,4x4,8x8] [--inputs 2] [--out bench/results/network.json]
For each reference model and array size: `hwgen build`, then `hwgen sim`
without stalls. Utilization = ideal cycles (MACs / PEs) / measured cycles.
Layer cycles run from the previous layer's last write to this layer's last
write, so they include descriptor fetch and pipeline fill. Every run is
also checked bit-exact; a mismatch stops the benchmark.
"""
from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

from hwgen.build import build
from hwgen.hwplan import ArrayShape, estimate_cycles
from hwgen.simulate import simulate

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["digits_cnn", "digits_mlp"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arrays", default="2x2,4x4,8x8")
    ap.add_argument("--inputs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("bench/results/network.json"))
    args = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in MODELS:
            for text in args.arrays.split(","):
                array = ArrayShape.parse(text)
                b = build(ROOT / "models" / f"{model}.pt", Path(tmp) / f"{model}_{text}", array=array,
                          inputs=args.inputs)
                r = simulate(b.path, work_dir=Path(tmp) / "sim")
                if not r.bit_exact:
                    raise SystemExit(f"{model} {text}: not bit-exact: {r.mismatches[:1]}")
                est = {c.layer: c.estimate for c in estimate_cycles(b.hw)}
                results.append({"model": model, "array": text, "pes": b.hw.pes, "macs": b.hw.macs,
                                "cycles": r.cycles_per_inference, "ideal": r.ideal_cycles,
                                "utilization": r.pe_utilization, "estimated": sum(est.values()),
                                "layers": [{**asdict(row), "estimated": est.get(row.layer)} for row in r.layers]})
    for res in results:
        print(f"\n{res['model']} on {res['array']} ({res['pes']} PEs): {res['cycles']:.0f} cycles/inference, "
              f"ideal {res['ideal']:.0f}, PE utilization {100 * res['utilization']:.1f}% "
              f"(model estimate {res['estimated']})")
        print(f"  {'layer':<16}{'cycles':>8}{'estimate':>10}{'ideal':>8}{'util':>8}")
        for row in res["layers"]:
            util = f"{100 * row['pe_utilization']:.1f}%" if row["pe_utilization"] else "-"
            est = row["estimated"] if row["estimated"] is not None else "-"
            print(f"  {row['layer'][:15]:<16}{row['cycles']:>8}{est:>10}{row['ideal_cycles']:>8.0f}{util:>8}")
    print(f"\n{'model':<12}{'array':>6}{'cycles':>9}{'ideal':>8}{'util':>8}")
    for res in results:
        print(f"{res['model']:<12}{res['array']:>6}{res['cycles']:>9.0f}{res['ideal']:>8.0f}{100 * res['utilization']:>7.1f}%")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
