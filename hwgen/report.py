"""Build reports: what the generated hardware holds and does, as JSON and as a Markdown table."""
from __future__ import annotations

from . import ir
from .api import Evaluation
from .fixed import Fixed
from .hwplan import ArrayShape, HardwarePlan, LayerCycles
from .quant import QuantizedModel


def build_report(qm: QuantizedModel, hw: HardwarePlan, cycles: list[LayerCycles], evaluation: Evaluation, array: ArrayShape,
                 vectors: int) -> dict:
    est = {c.layer: c for c in cycles if c.kind not in ("input", "output")}
    layers = []
    for node in qm.graph.nodes[1:]:
        lp = qm.plan.layer(node.name)
        c = est.get(node.name)
        unit = "alias (no hardware)" if isinstance(node, ir.Flatten) else (c.kind if c else "-")
        layers.append({
            "name": node.name, "op": node.op, "shape": list(node.shape), "unit": unit,
            "in": qm.in_format(node).to_json(), "weight": lp.weight.to_json() if lp.weight else None,
            "per_channel": lp.weight_channel_frac is not None, "bias": lp.bias.to_json() if lp.bias else None,
            "acc_bits": lp.acc_bits, "out": lp.out.to_json(), "activation": getattr(node, "activation", "none"),
            "macs": getattr(node, "macs", 0),
            "weight_bits": int(qm.weights[node.name].size * lp.weight.bits) if node.name in qm.weights else 0,
            "ideal_cycles": c.ideal if c else 0.0, "estimated_cycles": c.estimate if c else 0,
        })
    total_est = sum(c.estimate for c in cycles)
    ideal = hw.macs / hw.pes
    return {
        "model": qm.graph.source, "method": qm.plan.method, "array": str(array), "pes": hw.pes,
        "vectors": vectors, "dataset": evaluation.dataset,
        "float_accuracy": evaluation.float_accuracy, "fixed_accuracy": evaluation.fixed_accuracy,
        "output_sqnr_db": evaluation.output_sqnr_db, "accuracy_inputs": evaluation.inputs,
        "hardware": {"multiplier": f"s{hw.w_bits} x {'s' if hw.a_signed else 'u'}{hw.a_bits}",
                     "w_bits": hw.w_bits, "a_bits": hw.a_bits, "a_signed": hw.a_signed, "acc_bits": hw.acc_bits,
                     "store_bits": hw.store_bits, "activation_replicas": hw.replicas, "arena_words": hw.arena_depth,
                     "weight_words": len(hw.weight_words), "weight_word_bits": hw.weight_word_width,
                     "program_entries": len(hw.program), "pes_in_logic": hw.lut_pes,
                     "arena_in_spram": hw.arena_spram, "weights_in_spram": hw.weights_spram},
        "host_ops": list(qm.graph.host_ops),
        "memory_bits": hw.memory_bits(),
        "weight_bits_total": qm.weight_bits_total, "bias_bits_total": qm.bias_bits_total,
        "macs": hw.macs, "ideal_cycles": ideal, "estimated_cycles": total_est,
        "estimated_utilization": ideal / total_est if total_est else 0.0,
        "layers": layers,
    }


ARENA_IN_SPRAM = " (in SPRAM: two banks a replica, each layer writing the bank it does not read)"


def _f(obj) -> str:
    return "-" if obj is None else str(Fixed.from_json(obj))


def format_build_report(r: dict) -> str:
    acc = (f"float {100 * r['float_accuracy']:.2f}% / fixed {100 * r['fixed_accuracy']:.2f}% "
           f"on {r['accuracy_inputs']} {r['dataset']} inputs" if r["float_accuracy"] is not None
           else f"output SQNR vs float {r['output_sqnr_db']:.1f} dB ({r['dataset']})")
    hw, mem = r["hardware"], r["memory_bits"]
    in_logic = f", {hw['pes_in_logic']} of them multiplying in logic cells" if hw.get("pes_in_logic") else ""
    lines = [
        f"# hwgen build: {r['model']}", "",
        f"- method `{r['method']}`, array {r['array']} ({r['pes']} PEs{in_logic}), multiplier {hw['multiplier']}, "
        f"{hw['acc_bits']}-bit accumulators",
        f"- accuracy (golden model): {acc}",
        f"- MACs per inference {r['macs']}; ideal {r['ideal_cycles']:.0f} cycles (MACs / PEs); "
        f"estimated {r['estimated_cycles']} cycles ({100 * r['estimated_utilization']:.1f}% PE utilization). "
        "`hwgen sim` measures the real number.",
        f"- memory bits: weights {mem['weights']} ({r['weight_bits_total']} in the plan"
        f"{'; in SPRAM, loaded over the host link at start' if hw.get('weights_in_spram') else ''}), "
        "per-tile bias/shift "
        f"{mem['params']}, activations {mem['activation_arena']} x {hw['activation_replicas']} replicas"
        f"{ARENA_IN_SPRAM if hw.get('arena_in_spram') else ''}, "
        f"program {mem['program']}",
        f"- test vectors: {r['vectors']} inputs with every layer's integer outputs (vectors.npz)",
        *([f"- left to the host: the model's trailing {', '.join(r['host_ops'])}; the accelerator returns the "
           "logits, whose argmax is the same class"] if r.get("host_ops") else []), "",
        "| layer | op | shape | unit | in | weight | bias | acc | out | act | MACs | weight bits | ideal cyc | est. cyc |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in r["layers"]:
        lines.append(
            f"| {row['name']} | {row['op']} | {'x'.join(map(str, row['shape']))} | {row['unit']} | {_f(row['in'])} | "
            f"{_f(row['weight'])}{'/ch' if row['per_channel'] else ''} | {_f(row['bias'])} | {row['acc_bits'] or '-'} | "
            f"{_f(row['out'])} | {row['activation']} | {row['macs']} | {row['weight_bits']} | "
            f"{row['ideal_cycles']:.0f} | {row['estimated_cycles']} |")
    lines += ["", "Formats: s|u<bits>.<frac>, value = q * 2**-frac (docs/numerics.md)."]
    return "\n".join(lines) + "\n"
