"""cocotb testbench of rtl_templates.multiplier: the portable and the ECP5 (MULT18X18D) forms side by side.

Both get the same random operands every cycle, changed also while `en` is low, and random enables; each
cycle both products must equal the Python model of `latency` enabled register stages (operands, product,
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
            got = [signed(int(getattr(dut, name).value), p_bits) for name in ("product_generic", "product_ecp5")]
            checked += 1
            if got != [products[-1]] * 2 and len(mismatches) < 5:
                mismatches.append({"cycle": cycle, "generic": got[0], "ecp5": got[1], "want": products[-1]})
        if en:  # the clock edge after this cycle loads every stage
            products = [operands[0] * operands[1]] + products[:-1]
            operands = (signed(w_raw, w_bits), signed(a_raw, a_bits) if a_signed else a_raw)
            filled += 1
    write_report({"checked": checked, "mismatches": mismatches})
