"""UART host link around the accelerator: framed requests in, class and logits out (hwgen/protocol.py).

The payload is buffered and its checksum verified before the accelerator
sees a single value, so a corrupt frame never starts an inference. Errors
(command, length, checksum, timeout) are answered with a status frame; then
the link ignores the line until it has been idle for `timeout` cycles.
"""
from __future__ import annotations

from amaranth import Cat, Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen import protocol
from hwgen.hwplan import HardwarePlan

from .accelerator import Accelerator
from .uart import UARTRx, UARTTx


class HostLink(wiring.Component):
    def __init__(self, hw: HardwarePlan, divisor: int, timeout: int):
        self.hw, self.divisor, self.timeout = hw, divisor, timeout
        self.vbytes = protocol.value_bytes(hw.store_bits)
        self.payload_len = hw.input.size * self.vbytes
        self.n_out = hw.output.size
        if self.n_out > 255:
            raise ValueError(f"the host link returns at most 255 logits; this model has {self.n_out}")
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1),
                          "label": Out(8), "errors": Out(8)})

    def elaborate(self, platform):
        m = Module()
        hw, vb = self.hw, self.vbytes
        m.submodules.acc = acc = Accelerator(hw)
        m.submodules.rx = rx = UARTRx(self.divisor)
        m.submodules.tx = tx = UARTTx(self.divisor)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]

        m.submodules.inbuf = inbuf = Memory(shape=unsigned(8), depth=self.payload_len, init=[])
        in_wr, in_rd = inbuf.write_port(), inbuf.read_port()
        m.submodules.outbuf = outbuf = Memory(shape=signed(hw.store_bits), depth=self.n_out, init=[])
        out_wr, out_rd = outbuf.write_port(), outbuf.read_port()

        byte = rx.bytes.payload
        got = rx.bytes.valid
        total = Signal(8)          # running byte sum of the frame after the sync byte
        length = Signal(16)
        count = Signal(range(max(self.payload_len, self.n_out * vb) + 2))
        idle = Signal(range(self.timeout + 1))
        status = Signal(8)
        label = Signal(8)
        best = Signal(signed(hw.store_bits))
        value = Signal(8 * vb)
        part = Signal(range(vb + 1))
        n_values = Signal(range(max(hw.input.size, self.n_out) + 1))
        send = Signal(8)
        errors = Signal(8)
        wide = Signal(signed(8 * vb))  # a logit sign-extended to whole bytes
        m.d.comb += [self.label.eq(label), self.errors.eq(errors)]

        with m.If(got):
            m.d.sync += idle.eq(0)
        with m.Elif(idle != self.timeout):
            m.d.sync += idle.eq(idle + 1)
        timed_out = idle == self.timeout

        m.d.comb += [tx.bytes.payload.eq(send)]

        def transmit(value):
            """Offer `value` on the UART; the returned condition is true when it is taken."""
            m.d.comb += [send.eq(value), tx.bytes.valid.eq(1)]
            with m.If(tx.bytes.ready):
                m.d.sync += total.eq(total + send)
            return tx.bytes.ready

        def or_timeout():
            """After a state's `with m.If(got)`: a line silent for `timeout` cycles ends the frame."""
            with m.Elif(timed_out):
                m.d.sync += status.eq(protocol.STATUS_TIMEOUT)
                m.next = "ERROR"

        with m.FSM():
            with m.State("IDLE"):
                with m.If(got & (byte == protocol.SYNC_REQUEST)):
                    m.d.sync += [total.eq(0), count.eq(0)]
                    m.next = "CMD"
            with m.State("CMD"):
                with m.If(got):
                    m.d.sync += total.eq(total + byte)
                    with m.If(byte == protocol.CMD_INFER):
                        m.next = "LEN0"
                    with m.Else():
                        m.d.sync += status.eq(protocol.STATUS_COMMAND)
                        m.next = "ERROR"
                or_timeout()
            with m.State("LEN0"):
                with m.If(got):
                    m.d.sync += [total.eq(total + byte), length[:8].eq(byte)]
                    m.next = "LEN1"
                or_timeout()
            with m.State("LEN1"):
                with m.If(got):
                    m.d.sync += total.eq(total + byte)
                    with m.If(Cat(length[:8], byte) == self.payload_len):
                        m.next = "PAYLOAD"
                    with m.Else():
                        m.d.sync += status.eq(protocol.STATUS_LENGTH)
                        m.next = "ERROR"
                or_timeout()
            with m.State("PAYLOAD"):
                m.d.comb += [in_wr.addr.eq(count), in_wr.data.eq(byte), in_wr.en.eq(got)]
                with m.If(got):
                    m.d.sync += [total.eq(total + byte), count.eq(count + 1)]
                    with m.If(count == self.payload_len - 1):
                        m.next = "CHECK"
                or_timeout()
            with m.State("CHECK"):
                with m.If(got):
                    with m.If(((total + byte) & 0xFF) == 0):
                        m.d.sync += [count.eq(0), part.eq(0), n_values.eq(0), value.eq(0)]
                        m.next = "FEED"
                    with m.Else():
                        m.d.sync += status.eq(protocol.STATUS_CHECKSUM)
                        m.next = "ERROR"
                or_timeout()

            # --- inference: buffered bytes -> values -> accelerator -> logits buffer ---
            with m.State("FEED"):
                m.d.comb += [self.busy.eq(1), in_rd.addr.eq(count)]
                m.next = "FEED_BYTE"
            with m.State("FEED_BYTE"):  # in_rd.data holds byte `count`
                m.d.comb += self.busy.eq(1)
                m.d.sync += [value.eq(Cat(value[8:], in_rd.data)) if vb > 1 else value.eq(in_rd.data),
                             count.eq(count + 1), part.eq(part + 1)]
                with m.If(part == vb - 1):
                    m.next = "FEED_VALUE"
                with m.Else():
                    m.next = "FEED"
            with m.State("FEED_VALUE"):
                m.d.comb += [self.busy.eq(1), acc.inputs.valid.eq(1), acc.inputs.payload.eq(value[:hw.store_bits])]
                with m.If(acc.inputs.ready):
                    m.d.sync += [part.eq(0), n_values.eq(n_values + 1)]
                    with m.If(n_values == hw.input.size - 1):
                        m.d.sync += n_values.eq(0)
                        m.next = "COLLECT"
                    with m.Else():
                        m.next = "FEED"
            with m.State("COLLECT"):
                m.d.comb += [self.busy.eq(1), acc.outputs.ready.eq(1), out_wr.addr.eq(n_values),
                             out_wr.data.eq(acc.outputs.payload.data), out_wr.en.eq(acc.outputs.valid)]
                with m.If(acc.outputs.valid):
                    m.d.sync += n_values.eq(n_values + 1)
                    with m.If((n_values == 0) | (acc.outputs.payload.data > best)):  # first maximum, like argmax
                        m.d.sync += [best.eq(acc.outputs.payload.data), label.eq(n_values)]
                    with m.If(acc.outputs.payload.last):
                        m.d.sync += [status.eq(protocol.STATUS_OK)]
                        m.next = "RESP_SYNC"

            # --- response: each byte offered to the UART and, once taken, added to the checksum ---
            with m.State("RESP_SYNC"):
                with m.If(transmit(protocol.SYNC_RESPONSE)):
                    m.d.sync += total.eq(0)  # the checksum starts after the sync byte
                    m.next = "RESP_STATUS"
            with m.State("RESP_STATUS"):
                with m.If(transmit(status)):
                    with m.If(status == protocol.STATUS_OK):
                        m.next = "RESP_LABEL"
                    with m.Else():
                        m.next = "RESP_CHK"
            with m.State("RESP_LABEL"):
                with m.If(transmit(label)):
                    m.next = "RESP_COUNT"
            with m.State("RESP_COUNT"):
                with m.If(transmit(self.n_out)):
                    m.d.sync += [n_values.eq(0), part.eq(0)]
                    m.next = "RESP_READ"
            with m.State("RESP_READ"):
                m.d.comb += out_rd.addr.eq(n_values)
                m.next = "RESP_LOGIT"
            with m.State("RESP_LOGIT"):  # out_rd.data holds logit `n_values`; send byte `part` of it
                m.d.comb += [wide.eq(out_rd.data), out_rd.addr.eq(n_values)]
                with m.If(transmit(wide.word_select(part, 8))):
                    m.d.sync += part.eq(part + 1)
                    with m.If(part == vb - 1):
                        m.d.sync += [part.eq(0), n_values.eq(n_values + 1)]
                        with m.If(n_values == self.n_out - 1):
                            m.next = "RESP_CHK"
                        with m.Else():
                            m.next = "RESP_READ"
            with m.State("RESP_CHK"):
                with m.If(transmit(-total)):
                    with m.If(status == protocol.STATUS_OK):
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "DRAIN"

            with m.State("ERROR"):
                m.d.sync += errors.eq(errors + 1)
                m.next = "RESP_SYNC"
            with m.State("DRAIN"):  # ignore the rest of a broken frame until the line goes quiet
                with m.If(timed_out):
                    m.next = "IDLE"
        return m
