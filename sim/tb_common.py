"""Shared testbench steps: the job file, clock and reset."""
from __future__ import annotations

import json
import os

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles


def load_job() -> dict:
    with open(os.environ["HWGEN_JOB"]) as f:
        return json.load(f)


def write_report(report: dict) -> None:
    with open(os.environ["HWGEN_REPORT"], "w") as f:
        json.dump(report, f)


async def start(dut, idle: dict[str, int]) -> None:
    """10 ns clock, inputs at their idle values, two cycles of reset."""
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    for name, value in idle.items():
        getattr(dut, name).value = value
    await ClockCycles(dut.clk, 2)
    dut.rst.value = 0
