"""cocotb testbench of the whole-network accelerator: every layer's trace vs the golden model.

Reads its job from $HWGEN_JOB: the vectors file (integer inputs and every
traced layer's expected outputs), the trace field widths and the layer list.
For each inference: streams the input (optionally with random gaps), collects
every write on the trace port into per-layer arrays, receives the output
stream (optionally with random backpressure), then compares every layer bit
for bit, in graph order. Writes per-inference cycles, per-layer cycles, the
RTL's predictions and the first mismatches to $HWGEN_REPORT; appends one line
per finished inference to $HWGEN_PROGRESS when set.
"""
from __future__ import annotations

import os
import random

import cocotb
import numpy as np
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from sim.tb_common import load_job, start, write_report


def to_signed(v: int, width: int) -> int:
    return v - (1 << width) if v >> (width - 1) else v


def first_mismatch(layers, got, counts, expected, n):
    """(layer, message dict) of the first wrong layer in graph order, or None."""
    for lay in layers:
        name, size = lay["name"], lay["size"]
        want = expected[name][n]
        bad = np.nonzero(got[name] != want)[0]
        if counts[name] != size or bad.size:
            idx = int(bad[0]) if bad.size else None
            coord = list(np.unravel_index(idx, lay["shape"])) if idx is not None else None
            return {"inference": n, "layer": name, "index": idx, "coord": [int(c) for c in coord] if coord else None,
                    "got": None if idx is None else int(got[name][idx]),
                    "want": None if idx is None else int(want[idx]),
                    "wrong_values": int(bad.size), "writes": int(counts[name]), "size": size}
    return None


@cocotb.test()
async def accelerator_matches_golden(dut):
    job = load_job()
    vec = np.load(job["vectors"])
    layers = job["layers"]                         # traced layers in graph order, input first
    by_id = {lay["trace_id"]: lay for lay in layers}
    rng = random.Random(job.get("seed", 0))
    stall = job.get("stall", 0.0)
    count = min(job["inputs"], len(vec["x_int"]))
    progress = os.environ.get("HWGEN_PROGRESS")
    expected = {lay["name"]: vec[f"out_{lay['name']}"] for lay in layers}
    out_name = job["output"]

    await start(dut, {"inputs__valid": 0, "outputs__ready": 0})

    report = {"inferences": [], "mismatches": [], "predictions": [], "layer_cycles": {}, "error": None}
    try:
        await run_inferences(dut, job, vec, layers, by_id, expected, out_name, count, rng, stall, progress, report)
    except AssertionError as exc:  # a hang or a stray write: still report what was seen
        report["error"] = str(exc)
        raise
    finally:
        write_report(report)
    assert not report["mismatches"], f"first mismatch: {report['mismatches'][0]}"


async def run_inferences(dut, job, vec, layers, by_id, expected, out_name, count, rng, stall, progress, report):
    store = job["store_bits"]
    lb, ib = job["trace_layer_bits"], job["trace_index_bits"]
    mask = (1 << store) - 1
    cycle = 0
    for n in range(count):
        x = [int(v) & mask for v in vec["x_int"][n]]
        got = {lay["name"]: np.full(lay["size"], np.iinfo(np.int64).min, dtype=np.int64) for lay in layers}
        counts = {lay["name"]: 0 for lay in layers}
        sats = {lay["name"]: 0 for lay in layers}
        last_write = {}
        outputs = []
        xi = 0
        start = end = None
        limit = cycle + job["cycle_limit"]
        while True:
            await FallingEdge(dut.clk)
            cycle += 1
            if cycle > limit:
                raise AssertionError(f"inference {n}: timeout after {job['cycle_limit']} cycles; "
                                     f"writes so far: {counts}, outputs {len(outputs)}")
            iv = xi < len(x) and (stall == 0 or rng.random() >= stall)
            dut.inputs__valid.value = int(iv)
            if iv:
                dut.inputs__payload.value = x[xi]
            dut.outputs__ready.value = int(stall == 0 or rng.random() >= stall)
            await ReadOnly()
            if iv and dut.inputs__ready.value:
                if start is None:
                    start = cycle
                xi += 1
            tr = dut.trace_out.value.to_unsigned()
            if tr & 1:
                layer = (tr >> 1) & ((1 << lb) - 1)
                index = (tr >> (1 + lb)) & ((1 << ib) - 1)
                value = to_signed((tr >> (1 + lb + ib)) & mask, store)
                lay = by_id.get(layer)
                if lay is None or index >= lay["size"]:
                    raise AssertionError(f"inference {n}: write to unknown layer {layer} index {index}")
                got[lay["name"]][index] = value
                counts[lay["name"]] += 1
                sats[lay["name"]] += (tr >> (1 + lb + ib + store)) & 1
                last_write[lay["name"]] = cycle
            if dut.outputs__valid.value and dut.outputs__ready.value:
                word = dut.outputs__payload.value.to_unsigned()
                outputs.append(to_signed(word & mask, store))
                if word >> store:
                    end = cycle
                    break
        bad = first_mismatch(layers, got, counts, expected, n)
        out_want = [int(v) for v in expected[out_name][n]]
        if bad is None and outputs != out_want:
            bad = {"inference": n, "layer": "outputs stream", "got": outputs, "want": out_want}
        if bad:
            report["mismatches"].append(bad)
        report["predictions"].append(int(np.argmax(outputs)) if outputs else -1)
        report["inferences"].append({"cycles": end - start + 1, "saturations": sats})
        if n == 0:
            prev = start
            for lay in layers:
                t = last_write.get(lay["name"], prev)
                report["layer_cycles"][lay["name"]] = t - prev
                prev = t
            report["layer_cycles"]["(output stream)"] = end - prev
        if progress:
            with open(progress, "a") as f:
                f.write(f"{n}\n")
        await RisingEdge(dut.clk)
        cycle += 1
