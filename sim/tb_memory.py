"""cocotb testbench of rtl_templates.memories.BankedMemory: the portable and the ECP5 (DP16KD) forms side by side.

Both get the same random reads, writes (a RAM) and read enables every cycle (addresses changed also while `rd_en` is
low; the blocks never read the address written at the same edge, which the accelerator never does); each cycle
both `rd_data` must equal a Python list (the initial contents, then the writes) read through `latency`
enabled stages. With `write_latency` 1 (the write stage) a write lands at the second clock edge after it is
driven, and a read that would meet it at that edge is held off instead (`rd_en` low).
Writes the number of checked cycles and the first mismatches to $HWGEN_REPORT.
"""
from __future__ import annotations

import random

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly

from sim.tb_common import load_job, start, write_report


@cocotb.test()
async def forms_agree(dut):
    job = load_job()
    rng = random.Random(job["seed"])
    depth, width, latency = job["depth"], job["width"], job["latency"]
    writable, write_latency = job["writable"], job.get("write_latency", 0)
    await start(dut, {"rd_en": 0, "rd_addr": 0, **({"wr_en": 0, "wr_addr": 0, "wr_data": 0} if writable else {})})
    model = list(job["init"]) + [0] * (depth - len(job["init"]))
    address: int | None = None                       # the registered address: the blocks read it next
    stages: list[int | None] = [None] * (latency - 1)  # words in flight, oldest last
    queued: list[tuple[int, int] | None] = [None] * write_latency  # writes in the write stage, oldest first
    mismatches, checked = [], 0
    for cycle in range(job["cycles"]):
        await FallingEdge(dut.clk)
        rd_en, wr_en = int(rng.random() < 0.6), int(rng.random() < 0.5)
        rd_addr, wr_addr = rng.randrange(depth), rng.randrange(depth)
        wr_en &= writable
        wr_data = rng.getrandbits(width)
        if write_latency:  # the write landing at this edge was driven earlier: the read gives way
            landing = queued[0]
            if landing is not None and rd_en and landing[0] == address:
                rd_en = 0
        elif wr_en and rd_en and wr_addr == address:  # the blocks read `address` at this edge: a collision
            wr_addr = (wr_addr + 1) % depth
        if write_latency:
            landing, queued = queued[0], queued[1:] + [(wr_addr, wr_data) if wr_en else None]
        else:
            landing = (wr_addr, wr_data) if wr_en else None
        ports = [("rd_en", rd_en), ("rd_addr", rd_addr)]
        ports += [("wr_en", wr_en), ("wr_addr", wr_addr), ("wr_data", wr_data)] if writable else []
        for name, value in ports:
            getattr(dut, name).value = value
        await ReadOnly()
        if stages[-1] is not None:
            got = [int(getattr(dut, f"rd_data_{form}").value) for form in ("generic", "ecp5")]
            checked += 1
            if got != [stages[-1]] * 2 and len(mismatches) < 5:
                mismatches.append({"cycle": cycle, "generic": got[0], "ecp5": got[1], "want": stages[-1]})
        if rd_en:  # the clock edge after this cycle moves every stage (the blocks read before the write lands)
            stages = [None if address is None else model[address]] + stages[:-1]
            address = rd_addr
        if landing is not None:
            model[landing[0]] = landing[1]
    write_report({"checked": checked, "mismatches": mismatches})
