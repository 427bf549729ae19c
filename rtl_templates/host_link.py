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
        m.submodules.acc = acc = Accelerator(self.hw)
        m.submodules.rx = rx = UARTRx(self.divisor)
        m.submodules.tx = tx = UARTTx(self.divisor)
        m.submodules.inbuf = inbuf = Memory(shape=unsigned(8), depth=self.payload_len, init=[])
        m.submodules.outbuf = outbuf = Memory(shape=signed(self.hw.store_bits), depth=self.n_out, init=[])
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]
        link = _LinkFSM(self, m, acc, rx, tx, inbuf, outbuf)
        with m.FSM():
            link.request_states()
            link.inference_states()
            link.response_states()
            link.error_states()
        return m


class _LinkFSM:
    """The link's registers and its FSM, one method per phase of a request."""

    def __init__(self, link: HostLink, m: Module, acc: Accelerator, rx: UARTRx, tx: UARTTx, inbuf: Memory,
                 outbuf: Memory):
        hw, vb = link.hw, link.vbytes
        self.link, self.m, self.acc, self.rx, self.tx = link, m, acc, rx, tx
        self.hw, self.vb, self.payload_len, self.n_out = hw, vb, link.payload_len, link.n_out
        self.in_wr = inbuf.write_port()
        self.in_rd = inbuf.read_port()
        self.out_wr = outbuf.write_port()
        self.out_rd = outbuf.read_port()
        self.byte, self.got = rx.bytes.payload, rx.bytes.valid
        self.total = Signal(8)          # running byte sum of the frame after the sync byte
        self.length = Signal(16)
        self.count = Signal(range(max(self.payload_len, self.n_out * vb) + 2))
        self.idle = Signal(range(link.timeout + 1))
        self.status = Signal(8)
        self.label = Signal(8)
        self.best = Signal(signed(hw.store_bits))
        self.value = Signal(8 * vb)
        self.part = Signal(range(vb + 1))
        self.n_values = Signal(range(max(hw.input.size, self.n_out) + 1))
        self.send = Signal(8)
        self.errors = Signal(8)
        self.wide = Signal(signed(8 * vb))  # a logit sign-extended to whole bytes
        m.d.comb += [link.label.eq(self.label), link.errors.eq(self.errors), tx.bytes.payload.eq(self.send)]
        with m.If(self.got):
            m.d.sync += self.idle.eq(0)
        with m.Elif(self.idle != link.timeout):
            m.d.sync += self.idle.eq(self.idle + 1)
        self.timed_out = self.idle == link.timeout

    def transmit(self, value):
        """Offer `value` on the UART; the returned condition is true when it is taken."""
        m = self.m
        m.d.comb += [self.send.eq(value), self.tx.bytes.valid.eq(1)]
        with m.If(self.tx.bytes.ready):
            m.d.sync += self.total.eq(self.total + self.send)
        return self.tx.bytes.ready

    def or_timeout(self):
        """After a state's `with m.If(got)`: a line silent for `timeout` cycles ends the frame."""
        m = self.m
        with m.Elif(self.timed_out):
            m.d.sync += self.status.eq(protocol.STATUS_TIMEOUT)
            m.next = "ERROR"

    def header_byte(self, ok, next_state: str, error_status: int):
        """A checked header byte: summed into the checksum, then `next_state` if `ok`, else an error frame."""
        m = self.m
        with m.If(self.got):
            m.d.sync += self.total.eq(self.total + self.byte)
            with m.If(ok):
                m.next = next_state
            with m.Else():
                m.d.sync += self.status.eq(error_status)
                m.next = "ERROR"
        self.or_timeout()

    def request_states(self):
        """Sync, command, length, payload into the input buffer, checksum."""
        m, byte, got, total = self.m, self.byte, self.got, self.total
        with m.State("IDLE"):
            with m.If(got & (byte == protocol.SYNC_REQUEST)):
                m.d.sync += [total.eq(0), self.count.eq(0)]
                m.next = "CMD"
        with m.State("CMD"):
            self.header_byte(byte == protocol.CMD_INFER, "LEN0", protocol.STATUS_COMMAND)
        with m.State("LEN0"):
            with m.If(got):
                m.d.sync += [total.eq(total + byte), self.length[:8].eq(byte)]
                m.next = "LEN1"
            self.or_timeout()
        with m.State("LEN1"):
            self.header_byte(Cat(self.length[:8], byte) == self.payload_len, "PAYLOAD", protocol.STATUS_LENGTH)
        with m.State("PAYLOAD"):
            m.d.comb += [self.in_wr.addr.eq(self.count), self.in_wr.data.eq(byte), self.in_wr.en.eq(got)]
            with m.If(got):
                m.d.sync += [total.eq(total + byte), self.count.eq(self.count + 1)]
                with m.If(self.count == self.payload_len - 1):
                    m.next = "CHECK"
            self.or_timeout()
        with m.State("CHECK"):
            with m.If(got):
                with m.If(((total + byte) & 0xFF) == 0):
                    m.d.sync += [self.count.eq(0), self.part.eq(0), self.n_values.eq(0), self.value.eq(0)]
                    m.next = "FEED"
                with m.Else():
                    m.d.sync += self.status.eq(protocol.STATUS_CHECKSUM)
                    m.next = "ERROR"
            self.or_timeout()

    def inference_states(self):
        """Buffered bytes -> values -> accelerator -> logits buffer, tracking the first maximum."""
        m, hw, vb, acc, busy = self.m, self.hw, self.vb, self.acc, self.link.busy
        value, part, n_values = self.value, self.part, self.n_values
        with m.State("FEED"):
            m.d.comb += [busy.eq(1), self.in_rd.addr.eq(self.count)]
            m.next = "FEED_BYTE"
        with m.State("FEED_BYTE"):  # in_rd.data holds byte `count`
            m.d.comb += busy.eq(1)
            m.d.sync += [value.eq(Cat(value[8:], self.in_rd.data)) if vb > 1 else value.eq(self.in_rd.data),
                         self.count.eq(self.count + 1), part.eq(part + 1)]
            with m.If(part == vb - 1):
                m.next = "FEED_VALUE"
            with m.Else():
                m.next = "FEED"
        with m.State("FEED_VALUE"):
            m.d.comb += [busy.eq(1), acc.inputs.valid.eq(1), acc.inputs.payload.eq(value[:hw.store_bits])]
            with m.If(acc.inputs.ready):
                m.d.sync += [part.eq(0), n_values.eq(n_values + 1)]
                with m.If(n_values == hw.input.size - 1):
                    m.d.sync += n_values.eq(0)
                    m.next = "COLLECT"
                with m.Else():
                    m.next = "FEED"
        with m.State("COLLECT"):
            out = acc.outputs
            m.d.comb += [busy.eq(1), out.ready.eq(1), self.out_wr.addr.eq(n_values),
                         self.out_wr.data.eq(out.payload.data), self.out_wr.en.eq(out.valid)]
            with m.If(out.valid):
                m.d.sync += n_values.eq(n_values + 1)
                with m.If((n_values == 0) | (out.payload.data > self.best)):  # first maximum, like argmax
                    m.d.sync += [self.best.eq(out.payload.data), self.label.eq(n_values)]
                with m.If(out.payload.last):
                    m.d.sync += [self.status.eq(protocol.STATUS_OK)]
                    m.next = "RESP_SYNC"

    def response_states(self):
        """Each byte offered to the UART and, once taken, added to the checksum."""
        m, status, part, n_values = self.m, self.status, self.part, self.n_values
        with m.State("RESP_SYNC"):
            with m.If(self.transmit(protocol.SYNC_RESPONSE)):
                m.d.sync += self.total.eq(0)  # the checksum starts after the sync byte
                m.next = "RESP_STATUS"
        with m.State("RESP_STATUS"):
            with m.If(self.transmit(status)):
                with m.If(status == protocol.STATUS_OK):
                    m.next = "RESP_LABEL"
                with m.Else():
                    m.next = "RESP_CHK"
        with m.State("RESP_LABEL"):
            with m.If(self.transmit(self.label)):
                m.next = "RESP_COUNT"
        with m.State("RESP_COUNT"):
            with m.If(self.transmit(self.n_out)):
                m.d.sync += [n_values.eq(0), part.eq(0)]
                m.next = "RESP_READ"
        with m.State("RESP_READ"):
            m.d.comb += self.out_rd.addr.eq(n_values)
            m.next = "RESP_LOGIT"
        with m.State("RESP_LOGIT"):  # out_rd.data holds logit `n_values`; send byte `part` of it
            m.d.comb += [self.wide.eq(self.out_rd.data), self.out_rd.addr.eq(n_values)]
            with m.If(self.transmit(self.wide.word_select(part, 8))):
                m.d.sync += part.eq(part + 1)
                with m.If(part == self.vb - 1):
                    m.d.sync += [part.eq(0), n_values.eq(n_values + 1)]
                    with m.If(n_values == self.n_out - 1):
                        m.next = "RESP_CHK"
                    with m.Else():
                        m.next = "RESP_READ"
        with m.State("RESP_CHK"):
            with m.If(self.transmit(-self.total)):
                with m.If(status == protocol.STATUS_OK):
                    m.next = "IDLE"
                with m.Else():
                    m.next = "DRAIN"

    def error_states(self):
        m = self.m
        with m.State("ERROR"):
            m.d.sync += self.errors.eq(self.errors + 1)
            m.next = "RESP_SYNC"
        with m.State("DRAIN"):  # ignore the rest of a broken frame until the line goes quiet
            with m.If(self.timed_out):
                m.next = "IDLE"
