"""cocotb testbench of rtl_templates.multiplier: the portable, the ECP5 (MULT18X18D) and the logic-cell forms
side by side.

All get the same random operands every cycle, changed also while `en` is low, and random enables; each
cycle every product must equal the Python model of `latency` enabled register stages (operands, product,
then the product again for each further stage).
Writes the number of checked cycles and the first mismatches to $HWGEN_REPORT.
"""
from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly

from sim.tb_common import load_job, start, write_report


def signed(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) else value


@cocotb.test()
async def forms_agree(dut):
    job = load_job()
    rng = random.Random(job["seed"])
    w_bits, a_bits, a_signed, p_bits = job["w_bits"], job["a_bits"], job["a_signed"], job["w_bits"] + job["a_bits"]
    await start(dut, {"en": 0, "w": 0, "a": 0})
    latency = job["latency"]
    operands = (0, 0)                    # the model's first register stage
    products = [None] * (latency - 1)    # the later ones: unknown until enabled cycles have filled them
    filled = 0
    mismatches, checked = [], 0
    for cycle in range(job["cycles"]):
        await FallingEdge(dut.clk)
        w_raw, a_raw = rng.getrandbits(w_bits), rng.getrandbits(a_bits)
        en = int(rng.random() < 0.6)
        dut.w.value, dut.a.value, dut.en.value = w_raw, a_raw, en
        await ReadOnly()
        if filled >= latency:
            got = {form: signed(int(getattr(dut, f"product_{form}").value), p_bits) for form in job["forms"]}
            checked += 1
            if set(got.values()) != {products[-1]} and len(mismatches) < 5:
                mismatches.append({"cycle": cycle, **got, "want": products[-1]})
        if en:  # the clock edge after this cycle loads every stage
            products = [operands[0] * operands[1]] + products[:-1]
            operands = (signed(w_raw, w_bits), signed(a_raw, a_bits) if a_signed else a_raw)
            filled += 1
    write_report({"checked": checked, "mismatches": mismatches})
