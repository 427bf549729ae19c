"""cocotb testbench of the UART host link (rtl_templates.host_link.HostLink) around the accelerator.

The job lists byte frames to send, each with the response it must produce
(from hwgen.protocol and the golden vectors) and how long to stay quiet
afterwards. The bench drives `rx` bit by bit and decodes `tx` bit by bit,
so the UARTs, the frame parser, the accelerator and the response path are
all in the loop. An optional `stream` of requests is then sent back to back
as a host would (two in flight: the next goes out when a response is
complete), and the cycle at which each response ends is reported.
"""
from __future__ import annotations


import cocotb
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge, Timer, with_timeout

from sim.tb_common import load_job, start, write_report


async def send_byte(dut, value: int, divisor: int) -> None:
    for bit in [0] + [(value >> i) & 1 for i in range(8)] + [1]:
        dut.rx.value = bit
        await ClockCycles(dut.clk, divisor)


async def receive(dut, divisor: int, out: list) -> None:
    while True:
        await FallingEdge(dut.tx)
        await ClockCycles(dut.clk, divisor // 2)
        assert dut.tx.value == 0, "tx start bit glitch"
        v = 0
        for i in range(8):
            await ClockCycles(dut.clk, divisor)
            v |= int(dut.tx.value) << i
        await ClockCycles(dut.clk, divisor)
        assert dut.tx.value == 1, "tx stop bit low"
        out.append(v)


async def stream(dut, div: int, job: dict, received: list) -> dict:
    """Requests back to back, at most `window` without a response; (response end cycles, bytes received)."""
    frames, lengths, window = job["frames"], job["response_lengths"], job["window"]
    received.clear()
    cycle = [0]

    async def count():
        while True:
            await RisingEdge(dut.clk)
            cycle[0] += 1
    cocotb.start_soon(count())
    ends: list[int] = []

    async def watch():
        need = 0
        for n in lengths:
            need += n
            while len(received) < need:
                await RisingEdge(dut.clk)
            ends.append(cycle[0])
    watcher = cocotb.start_soon(watch())
    for i, frame in enumerate(frames):
        while i >= window and len(ends) < i - window + 1:
            await RisingEdge(dut.clk)
        for b in frame:
            await send_byte(dut, b, div)
    await with_timeout(watcher, job["timeout_cycles"] * 10, "ns")
    return {"ends": ends, "got": list(received)}


@cocotb.test()
async def host_link_round_trips(dut):
    job = load_job()
    div = job["divisor"]
    await start(dut, {"rx": 1})
    await ClockCycles(dut.clk, 2)
    received: list[int] = []
    cocotb.start_soon(receive(dut, div, received))
    report = {"cases": []}
    for case in job["cases"]:
        received.clear()
        for b in case["send"]:
            await send_byte(dut, b, div)
        want = case["expect"]

        async def wait_response():
            while len(received) < len(want):
                await RisingEdge(dut.clk)
        await with_timeout(wait_response(), case["timeout_cycles"] * 10, "ns")
        await ClockCycles(dut.clk, case["quiet_cycles"])
        report["cases"].append({"name": case["name"], "got": list(received), "want": want})
    if job.get("stream"):
        report["stream"] = await stream(dut, div, job["stream"], received)
    await Timer(1, "ns")
    write_report(report)
    for c in report["cases"]:
        assert c["got"] == c["want"], f"{c['name']}: got {bytes(c['got']).hex()} want {bytes(c['want']).hex()}"
