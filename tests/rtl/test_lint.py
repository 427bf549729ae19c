"""`verilator --lint-only -Wall` on the generated Verilog: the tile engine, the whole accelerator and the host link.

Every waiver is listed here with its reason (and in docs/dataflow.md); any
other warning fails the test.
"""
from __future__ import annotations

import re
import subprocess

import pytest

from hwgen import api
from hwgen.hwplan import ArrayShape, make_hardware_plan
from hwgen.quant import parse_override
from hwgen.toolchain import setup_verilator
from hwgen.verilog import emit_verilog
from rtl_templates.accelerator import Accelerator
from rtl_templates.host_link import HostLink
from sim.engine_model import EngineConfig

LINT_WAIVERS = [
    # Amaranth's Verilog: unused bits of wide intermediate wires, and operands it widens or
    # truncates on purpose (the exact widths are checked in test_multiplier_and_accumulator_widths...).
    "-Wno-UNUSEDSIGNAL", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC",
    # Amaranth gives every register its reset value as a declaration initialiser (FPGA power-up
    # state) and also assigns it in the clocked process.
    "-Wno-PROCASSINIT",
    # One Verilog file holds all generated modules, named by their hierarchy path.
    "-Wno-DECLFILENAME",
    # Switch / FSM processes assign every signal's default before the `case`, so an uncovered
    # value keeps the default: no latch, nothing unhandled.
    "-Wno-CASEINCOMPLETE",
]


@pytest.fixture(scope="module")
def digits_plan(root):
    overrides = dict([parse_override("conv2=w4")])  # two weight widths: the packed-lane paths too
    return make_hardware_plan(api.quantize(root / "models" / "digits_cnn.pt", bits=8, overrides=overrides),
                              ArrayShape(2, 3))


def _lint(tmp_path, verilog: str, top: str) -> None:
    (tmp_path / f"{top}.v").write_text(verilog)
    r = subprocess.run([str(setup_verilator()), "--lint-only", "-Wall", *LINT_WAIVERS, "--top-module", top, f"{top}.v"],
                       cwd=tmp_path, capture_output=True, text=True)
    warnings = sorted(set(re.findall(r"%(?:Warning|Error)-(\w+)", r.stderr)))
    assert r.returncode == 0 and not warnings, f"{top}: {warnings}\n{r.stderr[-3000:]}"


def test_tile_engine_lint_clean(tmp_path):
    _lint(tmp_path, emit_verilog(EngineConfig(2, 3, 8, 8, False, 24, 8, 16, 2).build(), "tile_engine"), "tile_engine")


def test_whole_accelerator_lint_clean(tmp_path, digits_plan):
    _lint(tmp_path, emit_verilog(Accelerator(digits_plan), "accelerator"), "accelerator")


def test_host_link_lint_clean(tmp_path, digits_plan):
    _lint(tmp_path, emit_verilog(HostLink(digits_plan, 8, 100), "host_link"), "host_link")
