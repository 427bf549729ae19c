"""Amaranth component -> Verilog text: the one place the flows (build, sim runner, tests) convert a design."""
from __future__ import annotations


def emit_verilog(component, name: str, ports=None) -> str:
    from amaranth.back import verilog

    return verilog.convert(component, name=name, ports=ports, emit_src=False)
