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


def ice40_settings(f_in: float) -> list[PLLConfig]:
    """Every legal SB_PLL40 setting from `f_in`, in icepll's search order."""
    out = []
    for divr in range(16):
        f_pfd = f_in / (divr + 1)
        if not 10 <= f_pfd <= 133:
            continue
        filter_range = next(i for i, edge in enumerate((17, 26, 44, 66, 101), 1) if f_pfd < edge) if f_pfd < 101 else 6
        for divf in range(128):
            f_vco = f_pfd * (divf + 1)
            if not 533 <= f_vco <= 1066:
                continue
            for divq in range(1, 7):
                out.append(PLLConfig("ice40", f_in, f_vco / 2 ** divq,
                                     {"DIVR": divr, "DIVF": divf, "DIVQ": divq, "FILTER_RANGE": filter_range}))
    return out


def ecp5_settings(f_in: float) -> list[PLLConfig]:
    """Every EHXPLLL output from `f_in` (internal feedback), with the smallest CLKOP_DIV that puts the VCO in range."""
    out = []
    for clki in range(1, 129):
        f_pfd = f_in / clki
        if f_pfd < 3.125:
            break
        for clkfb in range(1, 81):
            f_out = f_pfd * clkfb
            clkop = next((d for d in range(1, 129) if 400 <= f_out * d <= 800), None)
            if clkop is not None:
                out.append(PLLConfig("ecp5", f_in, f_out, {"CLKI_DIV": clki, "CLKFB_DIV": clkfb, "CLKOP_DIV": clkop}))
    return out


SETTINGS = {"ice40": ice40_settings, "ecp5": ecp5_settings}
FAMILY_NAMES = {"ice40": "iCE40", "ecp5": "ECP5"}


def pll_config(family: str, f_in: float, f_target: float) -> PLLConfig:
    """The setting whose output is nearest `f_target` (the first in search order on a tie)."""
    settings = SETTINGS[family](f_in)
    if not settings:
        raise HwgenError(f"no {FAMILY_NAMES[family]} PLL setting reaches {f_target} MHz from {f_in} MHz")
    return min(settings, key=lambda c: abs(c.f_out - f_target))


def ice40_pll(f_in: float, f_target: float) -> PLLConfig:
    return pll_config("ice40", f_in, f_target)


def ecp5_pll(f_in: float, f_target: float) -> PLLConfig:
    return pll_config("ecp5", f_in, f_target)


def pll_at_most(family: str, f_in: float, f_limit: float) -> PLLConfig | None:
    """The setting with the highest output not above `f_limit` (for `--clock max`); None if there is none."""
    below = [c for c in SETTINGS[family](f_in) if c.f_out <= f_limit]
    return max(below, key=lambda c: c.f_out) if below else None


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
