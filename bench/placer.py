"""Fmax over nextpnr seeds, with hwgen's placer options (hwgen.synth.PLACER_OPTS) and with nextpnr's defaults.

Run: .venv/bin/python bench/placer.py [--model digits_cnn] [--board orangecrab-25f] [--seeds 0,1,2,3,4,5]
     [--out bench/results/placer.json]
One placement moves Fmax by up to ~10% from seed to seed, so a single run says little about a placer setting or
a netlist change; this places one `--array auto` build at each seed both ways and prints the spread.
"""
from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from unittest import mock

from boards import board as get_board
from hwgen import synth as synth_module
from hwgen.build import build

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="digits_cnn")
    ap.add_argument("--board", default="orangecrab-25f")
    ap.add_argument("--seeds", default="0,1,2,3,4,5")
    ap.add_argument("--out", type=Path, default=Path("bench/results/placer.json"))
    args = ap.parse_args()
    family = get_board(args.board).family
    seeds = [int(s) for s in args.seeds.split(",")]
    arms = {"hwgen": synth_module.PLACER_OPTS[family], "nextpnr defaults": ""}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        b = build(ROOT / "models" / f"{args.model}.pt", Path(tmp) / "b", array="auto", board=args.board)
        for arm, opts in arms.items():
            for seed in seeds:
                with mock.patch.dict(synth_module.PLACER_OPTS, {family: opts}):
                    r = synth_module.synth(b.path, args.board, seed=seed, cache=Path(tmp) / "cache")
                rows.append({"model": args.model, "board": args.board, "array": r.array, "placer": arm,
                             "placer_opts": opts, "seed": seed, "fmax_mhz": r.fmax_mhz, "luts": r.luts})
                print(f"{arm:18} seed {seed}: {r.fmax_mhz:.1f} MHz", flush=True)
    print(f"\n{args.model} on {args.board} ({rows[0]['array']}), Fmax over seeds {args.seeds}")
    print(f"{'placer':18} {'min':>7} {'mean':>7} {'max':>7}")
    for arm in arms:
        f = [r["fmax_mhz"] for r in rows if r["placer"] == arm]
        print(f"{arm:18} {min(f):7.1f} {statistics.mean(f):7.1f} {max(f):7.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
