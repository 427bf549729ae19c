"""Amaranth component -> Verilog text: the one place the flows (build, sim runner, tests) convert a design."""
from __future__ import annotations


def emit_verilog(component, name: str, ports=None, platform=None) -> str:
    """`platform` (None: portable RTL) lets vendor-specific parts elaborate, e.g. the ECP5 DSP form of the PE."""
    from amaranth.back import verilog

    return verilog.convert(component, name=name, ports=ports, platform=platform, emit_src=False)
