"""Board PLLs: the divider search (as icepll / ecppll do it) and the primitive, for `hwgen synth --clock`.

iCE40 SB_PLL40_CORE (iCE40 sysCLOCK PLL guide): f_pfd = f_in / (DIVR + 1) in
[10, 133] MHz, f_vco = f_pfd * (DIVF + 1) in [533, 1066] MHz, f_out = f_vco / 2^DIVQ
(DIVQ 1..6). ECP5 EHXPLLL (FPGA-TN-02200): f_pfd = f_in / CLKI_DIV >= 3.125 MHz,
f_out = f_pfd * CLKFB_DIV (internal feedback from CLKOP), f_vco =
f_out * CLKOP_DIV in [400, 800] MHz.
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth import Elaboratable, Module, Signal
from amaranth.hdl import Instance

from hwgen.errors import HwgenError


@dataclass(frozen=True)
class PLLConfig:
    family: str
    f_in: float
    f_out: float        # what the dividers give (MHz), closest to the request
    params: dict


def ice40_pll(f_in: float, f_target: float) -> PLLConfig:
    best = None
    for divr in range(16):
        f_pfd = f_in / (divr + 1)
        if not 10 <= f_pfd <= 133:
            continue
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not 533 <= f_vco <= 1066:
                continue
            for divq in range(1, 7):
                f_out = f_vco / 2 ** divq
                if best is None or abs(f_out - f_target) < abs(best[0] - f_target):
                    best = (f_out, divr, divf, divq, f_pfd)
    if best is None:
        raise HwgenError(f"no iCE40 PLL setting reaches {f_target} MHz from {f_in} MHz")
    f_out, divr, divf, divq, f_pfd = best
    filter_range = next(i for i, edge in enumerate((17, 26, 44, 66, 101), 1) if f_pfd < edge) if f_pfd < 101 else 6
    return PLLConfig("ice40", f_in, f_out, {"DIVR": divr, "DIVF": divf, "DIVQ": divq, "FILTER_RANGE": filter_range})


def ecp5_pll(f_in: float, f_target: float) -> PLLConfig:
    best = None
    for clki in range(1, 129):
        f_pfd = f_in / clki
        if f_pfd < 3.125:
            break
        for clkfb in range(1, 81):
            f_out = f_pfd * clkfb
            for clkop in range(1, 129):
                if 400 <= f_out * clkop <= 800:
                    if best is None or abs(f_out - f_target) < abs(best[0] - f_target):
                        best = (f_out, clki, clkfb, clkop)
                    break
    if best is None:
        raise HwgenError(f"no ECP5 PLL setting reaches {f_target} MHz from {f_in} MHz")
    f_out, clki, clkfb, clkop = best
    return PLLConfig("ecp5", f_in, f_out, {"CLKI_DIV": clki, "CLKFB_DIV": clkfb, "CLKOP_DIV": clkop})


def pll_config(family: str, f_in: float, f_target: float) -> PLLConfig:
    return (ice40_pll if family == "ice40" else ecp5_pll)(f_in, f_target)


def pll_at_most(family: str, f_in: float, f_limit: float) -> PLLConfig | None:
    """The highest PLL output not above `f_limit` (the nearest-frequency search, asked lower until it fits)."""
    target = f_limit
    for _ in range(200):
        try:
            config = pll_config(family, f_in, target)
        except HwgenError:
            return None
        if config.f_out <= f_limit:
            return config
        target -= max(config.f_out - f_limit, 0.001 * f_limit)
    return None


class PLL(Elaboratable):
    """`clk_in` (or, on iCE40, the board clock pin `pad`) -> `clk_out` at `config.f_out`; `locked` once stable.

    On the iCE40UP5K the PLL sits on the clock pin's own site, so it must take
    the pin directly (SB_PLL40_PAD); the ECP5 PLL takes the buffered clock.
    """

    def __init__(self, config: PLLConfig, pad=None):
        self.config, self.pad = config, pad
        self.clk_in, self.clk_out, self.locked = Signal(), Signal(), Signal()

    def elaborate(self, platform):
        m = Module()
        c = self.config
        if c.family == "ice40":
            m.submodules.pll = Instance(
                "SB_PLL40_PAD", p_FEEDBACK_PATH="SIMPLE", p_PLLOUT_SELECT="GENCLK",
                p_DIVR=c.params["DIVR"], p_DIVF=c.params["DIVF"], p_DIVQ=c.params["DIVQ"],
                p_FILTER_RANGE=c.params["FILTER_RANGE"],
                i_PACKAGEPIN=self.pad, i_RESETB=1, i_BYPASS=0,
                o_PLLOUTGLOBAL=self.clk_out, o_LOCK=self.locked)
        else:
            feedback = Signal()
            m.submodules.pll = Instance(
                "EHXPLLL",
                a_FREQUENCY_PIN_CLKI=f"{c.f_in:g}", a_FREQUENCY_PIN_CLKOP=f"{c.f_out:g}",
                a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
                p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
                p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
                p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
                p_CLKI_DIV=c.params["CLKI_DIV"], p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=c.params["CLKOP_DIV"],
                p_CLKOP_CPHASE=c.params["CLKOP_DIV"] - 1, p_CLKOP_FPHASE=0,
                p_FEEDBK_PATH="INT_OP", p_CLKFB_DIV=c.params["CLKFB_DIV"],
                i_RST=0, i_STDBY=0, i_CLKI=self.clk_in, i_CLKFB=feedback, o_CLKINTFB=feedback,
                i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0,
                i_ENCLKOP=0, o_CLKOP=self.clk_out, o_LOCK=self.locked)
        return m
