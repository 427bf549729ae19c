"""Board definitions: amaranth-boards platforms, their capacity, and the host-link UART pins.

The platforms are subclassed only to build without programming tools
(openFPGALoader, dfu-suffix): `hwgen synth` makes bitstreams, it does not
flash them. Capacities are the device datasheets' numbers and appear in
fit messages and `--array auto`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from amaranth.build import Attrs, Pins, Resource, Subsignal
from amaranth.vendor import LatticeECP5Platform, SiliconBluePlatform

from hwgen.errors import HwgenError


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    family: str          # "ice40" or "ecp5"
    clock_mhz: float     # the board oscillator: the default clock, and the PLL reference for --clock
    luts: int            # LCs / LUT4s
    ffs: int
    brams: int           # EBR blocks
    bram_bits: int       # bits per EBR
    dsps: int            # SB_MAC16 / MULT18X18D
    make_platform: Callable[[], object]
    synth_opts: str = ""
    sprams: int = 0      # single-ported RAMs (the iCE40 UltraPlus's SB_SPRAM256KA, 16k x 16 bits each)

    def platform(self):
        return self.make_platform()


def _no_programmer(cls, extra_resources=()):
    """A subclass of an amaranth-boards platform that needs only yosys/nextpnr/pack to build."""

    class Platform(cls):
        @property
        def required_tools(self):
            base = LatticeECP5Platform if issubclass(cls, LatticeECP5Platform) else SiliconBluePlatform
            return base.required_tools.fget(self)

        @property
        def command_templates(self):
            base = LatticeECP5Platform if issubclass(cls, LatticeECP5Platform) else SiliconBluePlatform
            return base.command_templates.fget(self)

    Platform.__name__ = cls.__name__

    def make():
        p = Platform()
        if extra_resources:
            p.add_resources(list(extra_resources))
        return p
    return make


def _icebreaker():
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    return _no_programmer(ICEBreakerPlatform)()


def _ulx3s_85f():
    from amaranth_boards.ulx3s import ULX3S_85F_Platform
    return _no_programmer(ULX3S_85F_Platform)()


# OrangeCrab r0.2 has no UART to its USB port; the host link uses feather pins 0 (TX) and 1 (RX)
# with a 3.3 V USB-serial cable.
_ORANGECRAB_UART = Resource("uart", 0, Subsignal("tx", Pins("1", dir="o", conn=("io", 0))),
                            Subsignal("rx", Pins("0", dir="i", conn=("io", 0))), Attrs(IO_TYPE="LVCMOS33"))


def _orangecrab_25f():
    from amaranth_boards.orangecrab_r0_2 import OrangeCrabR0_2_25FPlatform
    return _no_programmer(OrangeCrabR0_2_25FPlatform, [_ORANGECRAB_UART])()


BOARDS: dict[str, Board] = {b.name: b for b in [
    Board("icebreaker", "iCEBreaker (iCE40UP5K-SG48)", "ice40", 12.0, luts=5280, ffs=5280, brams=30,
          bram_bits=4096, dsps=8, make_platform=_icebreaker, synth_opts="-dsp", sprams=4),
    Board("ulx3s-85f", "ULX3S (ECP5 LFE5U-85F)", "ecp5", 25.0, luts=83640, ffs=83640, brams=208,
          bram_bits=18432, dsps=156, make_platform=_ulx3s_85f),
    Board("orangecrab-25f", "OrangeCrab r0.2 (ECP5 LFE5U-25F)", "ecp5", 48.0, luts=24288, ffs=24288, brams=56,
          bram_bits=18432, dsps=28, make_platform=_orangecrab_25f),
]}


def board(name: str) -> Board:
    try:
        return BOARDS[name]
    except KeyError:
        raise HwgenError(f"unknown board {name!r}; available: {', '.join(BOARDS)}") from None
