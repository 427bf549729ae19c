"""The board top: the board clock, the UART pins, the host link and its accelerator, and status LEDs."""
from __future__ import annotations

from amaranth import Elaboratable, Module
from amaranth.build import ResourceError

from hwgen.hwplan import HardwarePlan

from .host_link import HostLink


class BoardTop(Elaboratable):
    """`led` 0 lights while an inference runs; the next LEDs show the last class in binary."""

    def __init__(self, hw: HardwarePlan, baud: int = 115200, timeout_s: float = 0.05):
        self.hw, self.baud, self.timeout_s = hw, baud, timeout_s

    def elaborate(self, platform):
        m = Module()
        clk_hz = platform.default_clk_frequency
        divisor = round(clk_hz / self.baud)
        m.submodules.link = link = HostLink(self.hw, divisor, int(clk_hz * self.timeout_s))
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
