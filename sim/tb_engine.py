"""cocotb testbench of rtl_templates.engine.TileEngine: driver -> DUT -> monitor -> checker.

Reads its job (engine widths, problems with expected integers) from $HWGEN_JOB,
tiles each M x K x N problem over the array, streams operands and parameters
with random gaps, applies random backpressure, reassembles C and compares every
integer. Writes mismatches and measured cycles to $HWGEN_REPORT.
"""
from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from sim.tb_common import load_job, start, write_report


def pack(values, width: int) -> int:
    word = 0
    for i, v in enumerate(values):
        word |= (int(v) & ((1 << width) - 1)) << (i * width)
    return word


def unpack(word: int, width: int, count: int, signed: bool = True) -> list[int]:
    out = []
    for i in range(count):
        v = (word >> (i * width)) & ((1 << width) - 1)
        if signed and v >> (width - 1):
            v -= 1 << width
        out.append(v)
    return out


def shift_width(cfg) -> int:
    return max(cfg["max_right"], cfg["max_left"], 1).bit_length() + 1


def tiles(prob, rows, cols):
    a, w = prob["a"], prob["w"]
    m, k, n = len(a), len(w), len(w[0])
    for m0 in range(0, m, rows):
        for n0 in range(0, n, cols):
            beats = []
            for kk in range(k):
                col = [a[m0 + i][kk] if m0 + i < m else 0 for i in range(rows)]
                row = [w[kk][n0 + j] if n0 + j < n else 0 for j in range(cols)]
                beats.append((col, row, kk == k - 1))
            bias = [prob["bias"][n0 + j] if n0 + j < n else 0 for j in range(cols)]
            shift = [prob["shift"][n0 + j] if n0 + j < n else 0 for j in range(cols)]
            yield m0, n0, beats, bias, shift


@cocotb.test()
async def engine_matches_golden(dut):
    job = load_job()
    cfg = job["config"]
    rows, cols = cfg["rows"], cfg["cols"]
    rng = random.Random(job.get("seed", 0))
    stall = job.get("stall", 0.2)
    log = dut._log
    await start(dut, {"operands__valid": 0, "params__valid": 0, "results__ready": 0})
    out_w = cfg["out_bits"] + 1
    report = {"problems": [], "mismatches": []}

    for pi, prob in enumerate(job["problems"]):
        dut.neg_shift.value = prob["neg_shift"]
        dut.clamp_lo.value = prob["clamp_lo"] & ((1 << (out_w + 1)) - 1)
        dut.clamp_hi.value = prob["clamp_hi"] & ((1 << (out_w + 1)) - 1)
        dut.lo.value = prob["lo"] & ((1 << out_w) - 1)
        dut.hi.value = prob["hi"] & ((1 << out_w) - 1)
        m, n = len(prob["a"]), len(prob["w"][0])
        plan = list(tiles(prob, rows, cols))
        operands = [(pack(c, cfg["a_bits"]) | (pack(r, cfg["w_bits"]) << (rows * cfg["a_bits"]))
                     | (int(last) << (rows * cfg["a_bits"] + cols * cfg["w_bits"]))) for _, _, beats, _, _ in plan for c, r, last in beats]
        params = [pack(b, cfg["acc_bits"]) | (pack(s, shift_width(cfg)) << (cols * cfg["acc_bits"])) for *_, b, s in plan]
        want_rows = len(plan) * rows
        got = []
        oi = pi_ = 0
        cycle = first_cycle = last_cycle = 0
        started = False
        limit = 50 * (len(operands) + want_rows) + 1000
        while len(got) < want_rows:
            await FallingEdge(dut.clk)
            cycle += 1
            if cycle > limit:
                raise AssertionError(f"problem {pi}: timeout, {len(got)} of {want_rows} result rows after {cycle} cycles")
            ov = oi < len(operands) and rng.random() >= stall
            dut.operands__valid.value = int(ov)
            dut.operands__payload.value = operands[oi] if oi < len(operands) else 0
            pv = pi_ < len(params) and rng.random() >= stall / 2
            dut.params__valid.value = int(pv)
            dut.params__payload.value = params[pi_] if pi_ < len(params) else 0
            dut.results__ready.value = int(rng.random() >= stall)
            await ReadOnly()
            if ov and dut.operands__ready.value:
                if not started:
                    started, first_cycle = True, cycle
                oi += 1
            if pv and dut.params__ready.value:
                pi_ += 1
            if dut.results__valid.value and dut.results__ready.value:
                word = dut.results__payload.value.to_unsigned()
                got.append((unpack(word, out_w, cols), unpack(word >> (cols * out_w), 1, cols, signed=False)))
                last_cycle = cycle
        # reassemble C and compare every integer
        first_bad = None
        count = 0
        for t, (m0, n0, *_rest) in enumerate(plan):
            for i in range(rows):
                vals, sats = got[t * rows + i]
                for j in range(cols):
                    if m0 + i < m and n0 + j < n:
                        want, want_sat = prob["expected"][m0 + i][n0 + j], prob["saturated"][m0 + i][n0 + j]
                        if vals[j] != want or sats[j] != want_sat:
                            count += 1
                            if first_bad is None:
                                first_bad = {"problem": pi, "row": m0 + i, "col": n0 + j, "got": vals[j], "want": want,
                                             "got_sat": sats[j], "want_sat": want_sat}
        report["problems"].append({"m": m, "k": len(prob["w"]), "n": n, "cycles": last_cycle - first_cycle + 1,
                                   "mismatches": count})
        if first_bad:
            report["mismatches"].append(first_bad)
        await RisingEdge(dut.clk)
    write_report(report)
    assert not report["mismatches"], f"first mismatch: {report['mismatches'][0]}"
    log.info("all %d problems bit-exact", len(job["problems"]))
