"""The board top: the clock (the oscillator, or a PLL), the UART pins, the host link and its accelerator, LEDs."""
from __future__ import annotations

from amaranth import ClockDomain, ClockSignal, DomainRenamer, Elaboratable, Module, ResetSignal, Signal
from amaranth.build import ResourceError
from amaranth.lib.cdc import ResetSynchronizer

from hwgen.hwplan import HardwarePlan

from .host_link import HostLink
from .pll import PLLConfig, PLL
from .uart import best_baud, uart_divisor


class BoardTop(Elaboratable):
    """`led` 0 lights while an inference runs; the next LEDs show the last class in binary.

    With a `pll`, the design runs from the PLL and is held in reset until the
    PLL locks and a power-on delay (covering the iCE40's BRAM start-up) ends:
    on iCE40 the PLL takes the clock pin and drives `sync`; on ECP5 it takes
    the platform's `sync` clock and drives a `fast` domain.
    """

    def __init__(self, hw: HardwarePlan, baud: int | None = None, timeout_s: float = 0.05, pll: PLLConfig | None = None):
        """`baud`: None is the fastest standard rate up to 3 Mbaud that the clock makes (uart.best_baud)."""
        self.hw, self.baud, self.timeout_s, self.pll = hw, baud, timeout_s, pll

    def elaborate(self, platform):
        m = Module()
        clk_hz = platform.default_clk_frequency
        domain = "sync"
        if self.pll is not None and self.pll.family == "ice40":
            # the PLL owns the clock pin: build `sync` from it, with the power-on delay the platform
            # would have added (iCE40 BRAMs read zero for ~3 us after configuration)
            pad = platform.request(platform.default_clk, dir="-")
            m.submodules.pll = pll = PLL(self.pll, pad=pad.io)
            clk_hz = self.pll.f_out * 1e6
            m.domains.sync = ClockDomain("sync")
            m.domains.por = ClockDomain("por", reset_less=True, local=True)
            m.d.comb += [ClockSignal("sync").eq(pll.clk_out), ClockSignal("por").eq(pll.clk_out)]
            delay = int(15e-6 * clk_hz)
            timer = Signal(range(delay + 1))
            ready = Signal()
            with m.If(~pll.locked):
                m.d.por += [timer.eq(0), ready.eq(0)]
            with m.Elif(timer == delay):
                m.d.por += ready.eq(1)
            with m.Else():
                m.d.por += timer.eq(timer + 1)
            m.d.comb += ResetSignal("sync").eq(~ready)
            platform.add_clock_constraint(pll.clk_out, clk_hz)
        elif self.pll is not None:
            m.submodules.pll = pll = PLL(self.pll)
            m.domains.fast = ClockDomain("fast")
            m.d.comb += [pll.clk_in.eq(ClockSignal("sync")), ClockSignal("fast").eq(pll.clk_out)]
            m.submodules.fast_reset = ResetSynchronizer(~pll.locked, domain="fast")  # ECP5 `sync` has no reset
            clk_hz = self.pll.f_out * 1e6
            platform.add_clock_constraint(pll.clk_out, clk_hz)
            domain = "fast"
        divisor = uart_divisor(clk_hz, self.baud or best_baud(clk_hz))
        link = HostLink(self.hw, divisor, int(clk_hz * self.timeout_s))
        m.submodules.link = DomainRenamer(domain)(link) if domain != "sync" else link
        uart = platform.request("uart", 0)
        m.d.comb += [link.rx.eq(uart.rx.i), uart.tx.o.eq(link.tx)]
        leds = []
        for name in ("led", "led_g", "led_r"):
            for i in range(8):
                try:
                    leds.append(platform.request(name, i).o)
                except ResourceError:
                    break
        if leds:
            m.d.comb += leds[0].eq(link.busy)
            for i, led in enumerate(leds[1:]):
                m.d.comb += led.eq(link.label[i] if i < 8 else 0)
        return m
