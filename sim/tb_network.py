"""cocotb testbench of the whole-network accelerator inside the simulation harness (sim/harness.py).

The harness feeds the inputs and records every trace write itself, so this
test only starts the clock (in the GPI layer, not a Python task), resets, and
waits for each inference to finish: Python wakes once per inference, not per
cycle. With `stall` > 0 it also drives the harness's `in_stall` / `out_stall`
with seeded random values every cycle (gaps on the input stream,
backpressure on the output), as the per-cycle testbench did.

Job ($HWGEN_JOB): `inputs` (inferences to wait for), `cycle_limit` (per
inference), `stall`, `seed`. Report ($HWGEN_REPORT): simulated cycles and
whether every inference finished; the trace file is checked by the caller.
Appends one line per finished inference to $HWGEN_PROGRESS when set.
"""
from __future__ import annotations

import os
import random
import time

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, First, Timer, ValueChange

from sim.tb_common import load_job, write_report

PERIOD_NS = 10


async def drive_stalls(dut, rng: random.Random, p: float) -> None:
    while True:
        await FallingEdge(dut.clk)
        dut.in_stall_in.value = int(rng.random() < p)
        dut.out_stall_in.value = int(rng.random() < p)


@cocotb.test()
async def network_finishes(dut):
    job = load_job()
    progress = os.environ.get("HWGEN_PROGRESS")
    Clock(dut.clk, PERIOD_NS, unit="ns", impl="gpi").start(start_high=False)
    dut.rst_in.value = 1
    dut.in_stall_in.value = 0
    dut.out_stall_in.value = 0
    await ClockCycles(dut.clk, 3)
    dut.rst_in.value = 0
    if job["stall"] > 0:
        cocotb.start_soon(drive_stalls(dut, random.Random(job["seed"]), job["stall"]))
    t0 = cocotb.utils.get_sim_time(unit="ns")
    wall0 = time.perf_counter()
    report = {"finished": 0, "error": None}
    try:
        for n in range(job["inputs"]):
            timeout = Timer(job["cycle_limit"] * PERIOD_NS, unit="ns")
            while int(dut.finished.value) <= n:
                if await First(ValueChange(dut.finished), timeout) is timeout:
                    report["error"] = f"inference {n}: no result after {job['cycle_limit']} cycles (hang)"
                    raise AssertionError(report["error"])
            report["finished"] = n + 1
            if progress:
                with open(progress, "a") as f:
                    f.write(f"{n}\n")
    finally:
        report["sim_cycles"] = int((cocotb.utils.get_sim_time(unit="ns") - t0) // PERIOD_NS)
        report["wall_seconds"] = time.perf_counter() - wall0  # the simulator's own time, start-up excluded
        write_report(report)
    await ClockCycles(dut.clk, 1)
