"""The MLPerf Tiny ports per board: fit, array, resources, Fmax, cycles and latency, beside the peers' published figures.

Run: .venv/bin/python bench/tiny.py [--models resnet8,ds_cnn,fc_autoencoder,mobilenet_v1_025]
                                    [--boards ulx3s-85f,icebreaker] [--sim N] [--synth] [--out bench/results/tiny.json]

For each model and board: `hwgen build --array auto --board B` (a model that does not fit is a row with
hwgen's one-line reason) and the cycle model's estimate. `--sim N` runs N inputs on Verilator (bit-exact
or the benchmark stops) for the measured cycles and per-layer PE utilization; `--synth` runs yosys +
nextpnr for LUT/FF/DSP/BRAM and Fmax (minutes per model on the ULX3S-85F). Latency is measured cycles
(else estimated) at Fmax. The peers' rows are their published MLPerf Tiny results (PEERS below).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import warnings
from dataclasses import asdict
from pathlib import Path

from hwgen.build import build
from hwgen.errors import HwgenError
from hwgen.hwplan import estimate_cycles
from hwgen.simulate import simulate
from hwgen.synth import synth

ROOT = Path(__file__).resolve().parents[1]
MODELS = ["resnet8", "ds_cnn", "fc_autoencoder", "mobilenet_v1_025"]

# Published figures (mlcommons/tiny_results_v0.7 and v1.0, open division; google/CFU-Playground proj/kws_micro_accel).
PEERS = [
    {"task": "image classification", "ours": "resnet8", "peer": "hls4ml RN08 (no skips), Pynq-Z2",
     "latency_ms": 7.6, "source": "mlcommons/tiny_results_v1.0"},
    {"task": "image classification", "ours": "resnet8", "peer": "FINN CNV-W1A1, Pynq-Z2 100 MHz",
     "latency_ms": 1.51, "source": "mlcommons/tiny_results_v0.7"},
    {"task": "keyword spotting", "ours": "ds_cnn", "peer": "FINN 3-bit MLP, Pynq-Z2",
     "latency_ms": 0.0175, "source": "mlcommons/tiny_results_v0.7"},
    {"task": "keyword spotting", "ours": "ds_cnn", "peer": "CFU Playground KWS, iCE40 UP5K class (~25M cycles)",
     "latency_ms": None, "source": "google/CFU-Playground proj/kws_micro_accel"},
    {"task": "anomaly detection", "ours": "fc_autoencoder", "peer": "hls4ml AD08 autoencoder, Pynq-Z2",
     "latency_ms": 0.0187, "source": "mlcommons/tiny_results_v0.7"},
]


def measure(model: str, board: str, tmp: Path, sim_inputs: int, run_synth: bool) -> dict:
    row: dict = {"model": model, "board": board}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            b = build(ROOT / "models" / "tiny" / f"{model}.pt2", tmp / f"{model}_{board}", array="auto",
                      board=board, inputs=max(sim_inputs, 1))
    except HwgenError as exc:
        return {**row, "fits": False, "reason": str(exc)}
    est = estimate_cycles(b.hw)
    row |= {"fits": True, "array": f"{b.hw.rows}x{b.hw.cols}", "macs": b.hw.macs,
            "ideal_cycles": b.hw.macs / b.hw.pes, "estimated_cycles": sum(c.estimate for c in est)}
    if sim_inputs:
        r = simulate(b.path, inputs=sim_inputs, work_dir=tmp / "sim")
        if not r.bit_exact:
            raise SystemExit(f"{model} on {board}: not bit-exact: {r.mismatches[:1]}")
        row |= {"cycles": r.cycles_per_inference, "pe_utilization": r.pe_utilization,
                "layers": [asdict(layer) for layer in r.layers]}
    if run_synth:
        try:
            s = synth(b.path, board)
        except HwgenError as exc:  # placed but does not fit (logic cells, DSPs)
            return {**row, "fits": False, "reason": str(exc)}
        row |= {k: getattr(s, k) for k in ("luts", "ffs", "dsps", "brams", "sprams", "fmax_mhz", "meets_timing")}
    cycles = row.get("cycles", row["estimated_cycles"])
    if row.get("fmax_mhz"):
        row["latency_ms_at_fmax"] = cycles / row["fmax_mhz"] / 1e3
    return row


def print_tables(rows: list[dict]) -> None:
    print(f"{'model':<18}{'board':<16}{'array':>6}{'est. cycles':>13}{'cycles':>11}{'util':>7}"
          f"{'LUT':>7}{'DSP':>5}{'BRAM':>5}{'SPRAM':>6}{'Fmax':>8}{'latency':>11}")
    for r in rows:
        if not r["fits"]:
            print(f"{r['model']:<18}{r['board']:<16}  does not fit: {r['reason']}")
            continue
        cycles = f"{r['cycles']:.0f}" if "cycles" in r else "-"
        util = f"{100 * r['pe_utilization']:.1f}%" if "pe_utilization" in r else "-"
        fmax = f"{r['fmax_mhz']:.1f}" if r.get("fmax_mhz") else "-"
        lat = f"{r['latency_ms_at_fmax']:.3f} ms" if "latency_ms_at_fmax" in r else "-"
        res = [str(r.get(k) if r.get(k) is not None else "-") for k in ("luts", "dsps", "brams", "sprams")]
        print(f"{r['model']:<18}{r['board']:<16}{r['array']:>6}{r['estimated_cycles']:>13}{cycles:>11}{util:>7}"
              f"{res[0]:>7}{res[1]:>5}{res[2]:>5}{res[3]:>6}{fmax:>8}{lat:>11}")
    print(f"\n{'peer (published MLPerf Tiny figure)':<58}{'ours':<16}{'latency':>11}  source")
    for p in PEERS:
        lat = f"{p['latency_ms']} ms" if p["latency_ms"] is not None else "-"
        print(f"{p['peer']:<58}{p['ours']:<16}{lat:>11}  {p['source']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--boards", default="ulx3s-85f,icebreaker")
    ap.add_argument("--sim", type=int, default=0, metavar="N", help="inputs per model on Verilator (0: estimate only)")
    ap.add_argument("--synth", action="store_true", help="place and route each model that fits (slow)")
    ap.add_argument("--out", type=Path, default=Path("bench/results/tiny.json"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            for board in args.boards.split(","):
                rows.append(measure(model, board, Path(tmp), args.sim, args.synth))
    print_tables(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "peers": PEERS}, indent=1) + "\n")


if __name__ == "__main__":
    main()
