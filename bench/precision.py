"""Accuracy (or output SQNR) against weight bits and weight memory, for every precision method and two baselines.

Run: .venv/bin/python bench/precision.py [--quick] [--out bench/results]
- digits_mlp and digits_cnn: accuracy on the 360-image test split for
  range / sqnr / tqt at uniform weight bits 2..16 (8-bit activations),
  per-channel range and sqnr, sqnr bit allocation under budgets, and
  analytic at several target mismatch probabilities; baselines: torch.ao
  int8 PTQ (per-channel, float scales) and Brevitas PTQ with power-of-two
  scales (per tensor) at 2..8 bits.
- a larger synthetic CNN (3x32x32, 5 convs, residual, global average pool):
  output SQNR against float on synthetic data instead of accuracy.
Writes precision.json and one PNG per model (accuracy vs bits, accuracy vs memory).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

import torch

from hwgen import api
from hwgen.baselines import IRModule, brevitas_available, brevitas_pow2_logits, torch_int8_logits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "models"))
import synthetic_cnn  # noqa: E402
warnings.filterwarnings("ignore")


def score(prep, logits_fn):
    """Accuracy on labelled data, output SQNR (dB) against float otherwise."""
    logits = logits_fn()
    if prep.test.y is not None:
        return float((logits.argmax(1) == prep.test.y).mean())
    with torch.no_grad():
        ref = IRModule(prep.model.graph, prep.model.params).eval()(torch.as_tensor(prep.test.x)).numpy()
    return api.sqnr_db(ref, logits)


def run_model(name, path, quick):
    prep = api.prepare(path)
    labelled = prep.test.y is not None
    params = sum(p["weight"].size for p in prep.model.params.values())
    metric = "accuracy" if labelled else "sqnr_db"
    rows = []

    def add(method, label, qm=None, bits=None, value=None, memory=None):
        if qm is not None:
            r = api.evaluate(prep, qm=qm)
            value = r.fixed_accuracy if labelled else r.output_sqnr_db
            memory = qm.weight_bits_total
        rows.append({"model": name, "method": method, "label": label, "weight_bits": bits, metric: value,
                     "weight_memory_bits": memory})

    widths = range(2, 17) if not quick else (2, 3, 4, 6, 8)
    for b in widths:
        add("range", f"w{b}", api.quantize(prep, method="range", weight_bits=b, act_bits=8), b)
        add("range per-channel", f"w{b}", api.quantize(prep, method="range", weight_bits=b, act_bits=8, per_channel=True), b)
        add("sqnr", f"w{b}", api.quantize(prep, method="sqnr", weight_bits=b, act_bits=8), b)
        add("sqnr per-channel", f"w{b}", api.quantize(prep, method="sqnr", weight_bits=b, act_bits=8, per_channel=True), b)
        if b <= 8:
            add("tqt", f"w{b}", api.quantize(prep, method="tqt", weight_bits=b, act_bits=8), b)
    for frac in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
        budget = int(frac * params * 8)
        for cost in ("params", "hardware"):
            try:
                qm = api.quantize(prep, method="sqnr", act_bits=8, weight_budget=budget, cost=cost)
            except Exception as exc:  # a budget below 2 bits per weight
                print(f"  sqnr budget {budget}: {exc}")
                continue
            add(f"sqnr alloc ({cost})", f"{frac:.1f}x8b", qm)
    for target in (0.3, 0.1, 0.03, 0.01, 0.003, 0.001):
        add("analytic", f"p_m<={target}", api.quantize(prep, method="analytic", target_mismatch=target))
    graph, p = prep.model.graph, prep.model.params
    add("torch.ao int8 (float scales)", "w8a8", value=score(prep, lambda: torch_int8_logits(graph, p, prep.calib.x, prep.test.x)),
        bits=8, memory=params * 8)
    if brevitas_available():
        for b in range(2, 9):
            add("brevitas pow2", f"w{b}a{b}", bits=b, memory=params * b,
                value=score(prep, lambda b=b: brevitas_pow2_logits(graph, p, prep.calib.x, prep.test.x, bits=b)))
    float_value = api.evaluate(prep, method="range", bits=16).float_accuracy if labelled else None
    return rows, metric, float_value, params


def plot(name, rows, metric, float_value, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for i, m in enumerate(methods):
        color = f"C{i % 10}"  # one colour per method in both panels
        pts = [r for r in rows if r["method"] == m]
        if all(r["weight_bits"] is not None for r in pts) and len(pts) > 1:
            ax1.plot([r["weight_bits"] for r in pts], [r[metric] for r in pts], "o-", label=m, ms=3, color=color)
        pts = sorted(pts, key=lambda r: r["weight_memory_bits"])
        ax2.plot([r["weight_memory_bits"] / 8192 for r in pts], [r[metric] for r in pts], "o-" if len(pts) > 1 else "s",
                 label=m, ms=3, color=color)
    for ax in (ax1, ax2):
        if float_value is not None:
            ax.axhline(float_value, color="k", lw=0.8, ls="--", label="float")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    if metric == "accuracy":
        for ax in (ax1, ax2):
            ax.set_ylim(max(0.0, (float_value or 1) - 0.15), 1.0)
    ax1.set_xlabel("weight bits (uniform)")
    ax2.set_xlabel("weight memory (KiB)")
    ax2.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{name}: {metric} vs precision")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    ap.add_argument("--quick", action="store_true", help="Fewer bit-widths.")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        synthetic_cnn.export(f"{tmp}/larger_cnn.pt2")
        models = [("digits_mlp", ROOT / "models/digits_mlp.pt"), ("digits_cnn", ROOT / "models/digits_cnn.pt"),
                  ("larger_cnn (synthetic data)", Path(f"{tmp}/larger_cnn.pt2"))]
        for name, path in models:
            rows, metric, float_value, params = run_model(name, path, args.quick)
            results[name] = {"metric": metric, "float": float_value, "parameters": int(params), "rows": rows}
            png = args.out / f"precision_{name.split()[0]}.png"
            plot(name, rows, metric, float_value, png)
            unit = "%" if metric == "accuracy" else " dB"
            print(f"\n{name} ({params} weights; {metric}{'' if float_value is None else f', float {100 * float_value:.2f}%'})")
            print(f"  {'method':<30}{'point':<12}{'weight KiB':>11}{metric:>10}")
            for r in rows:
                v = 100 * r[metric] if metric == "accuracy" else r[metric]
                print(f"  {r['method']:<30}{r['label']:<12}{r['weight_memory_bits'] / 8192:>11.2f}{v:>9.2f}{unit}")
            print(f"  plot: {png}")
    (args.out / "precision.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"\nwrote {args.out / 'precision.json'}")


if __name__ == "__main__":
    main()
