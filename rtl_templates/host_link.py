"""UART host link around the accelerator: framed requests in, class and logits out (hwgen/protocol.py).

Three processes run at once, so the line and the accelerator overlap:

- **receive**: parses a frame into one of two input banks and checks it;
  a checked bank (or the error status of a broken frame) is queued for
- **compute**: unpacks the bank's values (packed at the input format's
  width) into the accelerator, frees the bank as soon as the last value is
  in (the next request can arrive while the accelerator computes), and
  collects the logits into one of two output banks, queued for
- **transmit**: sends the response (the logits packed at the output
  format's width) while the next inference runs.

A payload is buffered and its checksum verified before the accelerator sees
a single value, so a corrupt frame never starts an inference. Errors
(command, length, checksum, timeout) are answered in order with a status
frame; then the receiver ignores the line until it has been idle for
`timeout` cycles.
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth import Array, Cat, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen import protocol
from hwgen.hwplan import HardwarePlan

from .accelerator import Accelerator
from .family import family_of
from .memories import READ_LATENCY, BankedMemory
from .uart import UARTRx, UARTTx

BANKS = 2  # requests (and responses) in flight: hwgen.protocol's window


def next_bank(bank: Signal):
    """The bank after `bank`, round the ring."""
    return Mux(bank == BANKS - 1, 0, bank + 1)


class HostLink(wiring.Component):
    def __init__(self, hw: HardwarePlan, divisor: int, timeout: int, pipelined: bool | None = None):
        """`pipelined`: both buffers are banked memories (`memories.BankedMemory`: on ECP5 DP16KD banks with their
        output register, then registered read data before the unpacking and packing shifters; `LATCH` states
        wait for it, READ_LATENCY cycles per byte or logit), so a block RAM's clock-to-out (5.8 ns on the
        ULX3S-85F's speed grade) and the multiplexer between blocks end at flip-flops (the FC autoencoder's and
        ResNet-8's critical path, 9.8 ns, with the inferred buffer), the UART receiver's byte strobe is a
        register (`UARTRx(registered=True)`), and so is the transmitter's byte (`UARTTx(registered=True)`). None: on ECP5 only; on the iCE40 UP5K the registers' 27 logic
        cells pushed digits_cnn's 2x4 design past what nextpnr could place (5025 of 5280), and the strobe cost
        both digits_cnn designs 4-14% of their Fmax."""
        self.hw, self.divisor, self.timeout = hw, divisor, timeout
        self.pipelined = pipelined
        self.in_fmt, self.out_fmt = hw.input.fmt, hw.output.fmt
        self.n_in, self.n_out = hw.input.size, hw.output.size
        self.payload_len = protocol.packed_bytes(self.n_in, self.in_fmt.bits)
        if max(self.n_out, self.payload_len) > protocol.MAX_VALUES:
            raise ValueError(f"the host link's frames count at most {protocol.MAX_VALUES} values or bytes; this "
                             f"model has {self.n_out} outputs and {self.payload_len} input bytes")
        self.label_bits = max(8, (self.n_out - 1).bit_length())  # the first maximum's index
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1),
                          "label": Out(self.label_bits), "errors": Out(8)})

    def elaborate(self, platform):
        m = Module()
        # `pipelined` resolved for this platform; the processes read it while they elaborate
        self.registered = family_of(platform) == "ecp5" if self.pipelined is None else self.pipelined
        m.submodules.acc = acc = Accelerator(self.hw)
        m.submodules.rx = rx = UARTRx(self.divisor, registered=self.registered)
        m.submodules.tx = tx = UARTTx(self.divisor, registered=self.registered)
        in_rd, in_wr = self._buffer(m, "inbuf", unsigned(8), BANKS * self.payload_len)
        out_rd, out_wr = self._buffer(m, "outbuf", signed(self.hw.store_bits), BANKS * self.n_out)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx)]
        queues = _Queues(m, self.label_bits)
        _Receiver(self, m, rx, in_wr, queues).elaborate()
        _Compute(self, m, acc, in_rd, out_wr, queues).elaborate()
        _Transmitter(self, m, tx, out_rd, queues).elaborate()
        return m

    def _buffer(self, m: Module, name: str, shape, depth: int) -> tuple["_Port", "_Port"]:
        """A buffer's read and write ports: an inferred memory (read data a cycle after the address), or
        (`registered`) a banked one, read every cycle (READ_LATENCY)."""
        if not self.registered:
            m.submodules[name] = mem = Memory(shape=shape, depth=depth, init=[])
            rd, wr = mem.read_port(), mem.write_port()
            return _Port(rd.addr, rd.data, rd.en), _Port(wr.addr, wr.data, wr.en)
        m.submodules[name] = mem = BankedMemory(shape, depth)
        m.d.comb += mem.rd_en.eq(1)
        return _Port(mem.rd_addr, mem.rd_data, mem.rd_en), _Port(mem.wr_addr, mem.wr_data, mem.wr_en)

    @property
    def read_waits(self) -> int:
        """LATCH states between addressing a buffer and using its registered data (none in the direct form)."""
        return READ_LATENCY if self.registered else 0


@dataclass(frozen=True)
class _Port:
    """A buffer port as the processes drive it, whichever memory lies behind."""
    addr: Value
    data: Value
    en: Value


def after_read(link: HostLink, then: str, name: str = "LATCH") -> str:
    """The state to go to after addressing a buffer: the first LATCH state (`latch_states`), or `then`."""
    return f"{name}0" if link.read_waits else then


def latch_states(link: HostLink, m: Module, then: str, busy: bool = False, name: str = "LATCH") -> None:
    """The LATCH states between addressing a buffer and its registered data (`fetched` takes it in the last
    one), ending in state `then`. `busy`: the link is busy in them. `name`: their prefix (one set per path)."""
    for wait in range(link.read_waits):
        with m.State(f"{name}{wait}"):
            if busy:
                m.d.comb += link.busy.eq(1)
            m.next = f"{name}{wait + 1}" if wait + 1 < link.read_waits else then


def buffer_read(link: HostLink, m: Module, rd) -> Signal:
    """The buffer's read data as the shifters see it: `rd.data`, or (`pipelined`) a register of the banked
    buffer's data, which the FSMs wait for in their LATCH states."""
    if not link.registered:
        return rd.data
    fetched = Signal.like(rd.data, name="fetched")
    m.d.sync += fetched.eq(rd.data)
    return fetched


class _Queues:
    """Bank flags between the processes: a bank is full from its writer's end to its reader's release."""

    def __init__(self, m: Module, label_bits: int):
        self.in_full = Array(Signal(name=f"in_full{i}") for i in range(BANKS))
        self.in_status = Array(Signal(8, name=f"in_status{i}") for i in range(BANKS))
        self.in_ok = Array(Signal(name=f"in_ok{i}") for i in range(BANKS))  # in_status == OK, one bit to decide on
        self.in_load = Array(Signal(name=f"in_load{i}") for i in range(BANKS))  # a load frame (CMD_LOAD)
        self.out_full = Array(Signal(name=f"out_full{i}") for i in range(BANKS))
        self.out_status = Array(Signal(8, name=f"out_status{i}") for i in range(BANKS))
        self.out_label = Array(Signal(label_bits, name=f"out_label{i}") for i in range(BANKS))
        self.errors = Signal(8)


class _Receiver:
    """Sync, command, length, payload into the write bank, checksum; the bank then queued, OK or not."""

    def __init__(self, link: HostLink, m: Module, rx: UARTRx, wr, q: _Queues):
        self.link, self.m, self.wr, self.q = link, m, wr, q
        # (`registered`, ECP5) each received byte registered before the frame's decisions, so the UART's strobe
        # and byte start the state machine's compares from flip-flops next to it (the ULX3S-85F's critical path at
        # one point, 8.8 ns with a 3.3 ns route); bytes come a UART frame apart, so the cycle costs nothing. The
        # iCE40's UP5K cannot spare the logic cells
        if link.registered:
            self.byte, self.got = Signal(8, name="rx_byte"), Signal(name="rx_got")
            m.d.sync += [self.byte.eq(rx.bytes.payload), self.got.eq(rx.bytes.valid)]
        else:
            self.byte, self.got = rx.bytes.payload, rx.bytes.valid
        self.total = Signal(8)          # running byte sum of the frame after the sync byte
        self.length = Signal(16)
        self.count = Signal(range(link.payload_len + 1))
        self.bank = Signal(range(BANKS))
        self.idle = Signal(range(link.timeout + 1))
        self.finished, self.finished_status, self.finished_ok = Signal(), Signal(8), Signal()
        self.is_load = Signal()  # the frame's command is CMD_LOAD
        with m.If(self.got):
            m.d.sync += self.idle.eq(0)
        with m.Elif(self.idle != link.timeout):
            m.d.sync += self.idle.eq(self.idle + 1)
        self.timed_out = self.idle == link.timeout
        m.d.comb += link.errors.eq(q.errors)

    def finish(self, status: int):
        """Queue the bank with `status` (counted if it is an error), a cycle later (`_queue`)."""
        self.m.d.sync += [self.finished.eq(1), self.finished_status.eq(status),
                          self.finished_ok.eq(status == protocol.STATUS_OK)]

    def _queue(self):
        """The bank flags follow a registered `finished`, so the frame's last decisions (state, checksum) end in
        flip-flops and not in the flags' bank selection (the OrangeCrab's critical path); the next request's sync
        byte is at least a UART frame later, so it always sees the flags."""
        m, q = self.m, self.q
        m.d.sync += self.finished.eq(0)
        with m.If(self.finished):
            m.d.sync += [q.in_full[self.bank].eq(1), q.in_status[self.bank].eq(self.finished_status),
                         q.in_ok[self.bank].eq(self.finished_ok), self.bank.eq(next_bank(self.bank))]
            if self.link.hw.weights_spram:
                m.d.sync += q.in_load[self.bank].eq(self.is_load)
            with m.If(~self.finished_ok):
                m.d.sync += q.errors.eq(q.errors + 1)

    def fail(self, status: int):
        self.finish(status)
        self.m.next = "DRAIN"

    def or_timeout(self):
        """After a state's `with m.If(got)`: a line silent for `timeout` cycles ends the frame."""
        with self.m.Elif(self.timed_out):
            self.fail(protocol.STATUS_TIMEOUT)

    def header_byte(self, ok, next_state: str, error_status: int):
        """A checked header byte: summed into the checksum, then `next_state` if `ok`, else an error frame."""
        m = self.m
        with m.If(self.got):
            m.d.sync += self.total.eq(self.total + self.byte)
            with m.If(ok):
                m.next = next_state
            with m.Else():
                self.fail(error_status)
        self.or_timeout()

    def elaborate(self):
        m, link, byte, got, total = self.m, self.link, self.byte, self.got, self.total
        base = self.bank * link.payload_len
        self._queue()
        with m.FSM(name="receive"):
            with m.State("IDLE"):
                with m.If(got & (byte == protocol.SYNC_REQUEST)):
                    m.d.sync += [total.eq(0), self.count.eq(0)]
                    with m.If(self.q.in_full[self.bank]):  # a third request in flight: the host broke the window
                        m.d.sync += self.q.errors.eq(self.q.errors + 1)
                        m.next = "DRAIN"
                    with m.Else():
                        m.next = "CMD"
            with m.State("CMD"):
                if link.hw.weights_spram:  # a load frame too: its bank is marked for the compute process
                    m.d.sync += self.is_load.eq(byte == protocol.CMD_LOAD)
                    known = (byte == protocol.CMD_INFER) | (byte == protocol.CMD_LOAD)
                else:
                    known = byte == protocol.CMD_INFER
                self.header_byte(known, "LEN0", protocol.STATUS_COMMAND)
            with m.State("LEN0"):
                with m.If(got):
                    m.d.sync += [total.eq(total + byte), self.length[:8].eq(byte)]
                    m.next = "LEN1"
                self.or_timeout()
            with m.State("LEN1"):
                self.header_byte(Cat(self.length[:8], byte) == link.payload_len, "PAYLOAD", protocol.STATUS_LENGTH)
            with m.State("PAYLOAD"):
                m.d.comb += [self.wr.addr.eq(base + self.count), self.wr.data.eq(byte), self.wr.en.eq(got)]
                with m.If(got):
                    m.d.sync += [total.eq(total + byte), self.count.eq(self.count + 1)]
                    with m.If(self.count == link.payload_len - 1):
                        m.next = "CHECK"
                self.or_timeout()
            with m.State("CHECK"):
                with m.If(got):
                    m.d.sync += total.eq(total + byte)
                    m.next = "VERIFY"
                self.or_timeout()
            with m.State("VERIFY"):  # the sum is compared a cycle after the add (the iCEBreaker's path, 25.4 ns)
                with m.If(total == 0):
                    self.finish(protocol.STATUS_OK)
                    m.next = "IDLE"
                with m.Else():
                    self.fail(protocol.STATUS_CHECKSUM)
            with m.State("DRAIN"):  # ignore the rest of a broken frame until the line goes quiet
                with m.If(self.timed_out):
                    m.next = "IDLE"


class _Compute:
    """A queued bank's packed bytes -> values -> accelerator -> logits into an output bank, first maximum tracked."""

    def __init__(self, link: HostLink, m: Module, acc: Accelerator, rd, wr, q: _Queues):
        self.link, self.m, self.acc, self.rd, self.wr, self.q = link, m, acc, rd, wr, q
        bits = link.in_fmt.bits
        self.bits = Signal(bits + 8)     # unpacked bits not yet sent, from bit 0
        self.nbits = Signal(range(bits + 9))
        self.count = Signal(range(link.payload_len + 1))
        self.n_values = Signal(range(max(link.n_in, link.n_out) + 1))
        self.in_bank = Signal(range(BANKS))
        self.out_bank = Signal(range(BANKS))
        self.best = Signal(signed(link.hw.store_bits))
        self.label = Signal(link.label_bits)
        self.beat = _OutputBeat(link.hw.store_bits, link.n_out)

    def elaborate(self):
        m, link, q, acc = self.m, self.link, self.q, self.acc
        fmt = link.in_fmt
        value = self.bits[:fmt.bits].as_signed() if fmt.signed else self.bits[:fmt.bits]
        next_in = next_bank(self.in_bank)
        next_out = next_bank(self.out_bank)
        beat = self.beat
        first_max = (beat.index == 0) | (beat.data > self.best)  # the first maximum, like argmax
        fetched = buffer_read(link, m, self.rd)
        # WAIT decides on a registered condition (the bank flags go through Array muxes), worked out only while
        # waiting and cleared when it is acted on, so it never reads banks that are about to move
        startable = Signal()
        startable_ok = Signal()  # the input bank's frame was OK, registered beside `startable`: the flag's mux ends here
        # COLLECT's state as a register of its own: the accelerator's output ready (its output counters' enable)
        # starts from a flip-flop, not from the state decode
        collecting = Signal()
        with m.FSM(name="compute") as fsm:
            with m.State("WAIT"):
                with m.If(startable):
                    with m.If(startable_ok):
                        m.d.sync += [self.count.eq(0), self.nbits.eq(0), self.n_values.eq(0)]
                        m.next = "FETCH"
                        if link.hw.weights_spram:
                            with m.If(q.in_load[self.in_bank]):
                                m.next = "LOAD_FETCH"
                    with m.Else():  # a broken frame: its status goes out in order, nothing runs
                        m.d.sync += [q.out_full[self.out_bank].eq(1),
                                     q.out_status[self.out_bank].eq(q.in_status[self.in_bank]),
                                     q.in_full[self.in_bank].eq(0), self.in_bank.eq(next_in),
                                     self.out_bank.eq(next_out)]
            with m.State("FETCH"):  # the read port is addressed in every state (below): byte `count` arrives next
                m.d.comb += link.busy.eq(1)
                m.next = after_read(link, "BYTE")
            latch_states(link, m, "BYTE", busy=True)
            with m.State("BYTE"):  # `fetched` holds byte `count`: append it above the bits not yet sent
                m.d.comb += link.busy.eq(1)
                m.d.sync += [self.bits.eq(self.bits | (fetched << self.nbits)), self.nbits.eq(self.nbits + 8),
                             self.count.eq(self.count + 1)]
                m.next = "EMIT"
            with m.State("EMIT"):
                m.d.comb += link.busy.eq(1)
                with m.If(self.nbits >= fmt.bits):
                    m.d.comb += [acc.inputs.valid.eq(1), acc.inputs.payload.eq(value)]
                    with m.If(acc.inputs.ready):
                        m.d.sync += [self.bits.eq(self.bits >> fmt.bits), self.nbits.eq(self.nbits - fmt.bits),
                                     self.n_values.eq(self.n_values + 1)]
                        with m.If(self.n_values == link.n_in - 1):  # the bank is free: the next frame may arrive
                            m.d.sync += [q.in_full[self.in_bank].eq(0), self.in_bank.eq(next_in),
                                         self.n_values.eq(0), collecting.eq(1)]
                            m.next = "COLLECT"
                with m.Else():
                    m.next = "FETCH"
            with m.State("COLLECT"):
                out = acc.outputs
                m.d.comb += [link.busy.eq(1),
                             self.wr.addr.eq(self.out_bank * link.n_out + self.n_values),
                             self.wr.data.eq(out.payload.data), self.wr.en.eq(out.valid)]
                m.d.sync += [beat.valid.eq(out.valid), beat.data.eq(out.payload.data), beat.last.eq(out.payload.last),
                             beat.index.eq(self.n_values)]
                with m.If(out.valid):
                    m.d.sync += self.n_values.eq(self.n_values + 1)
                with m.If(beat.valid & beat.last):  # the last logit, registered: it goes through the argmax now
                    m.d.sync += collecting.eq(0)  # (deciding on the FIFO's own `last` had been the OrangeCrab's
                    m.next = "QUEUE"              # critical path, 5.1 ns); no logit follows it
            if link.hw.weights_spram:
                self._load_states(fetched, next_in, next_out)
            with m.State("QUEUE"):  # a cycle later, so the compare ends in `best` and `label`, not in the queue's
                m.d.sync += [q.out_full[self.out_bank].eq(1),  # bank multiplexer (the OrangeCrab's path, 5.7 ns)
                             q.out_status[self.out_bank].eq(protocol.STATUS_OK),
                             q.out_label[self.out_bank].eq(self.label), self.out_bank.eq(next_out)]
                m.next = "WAIT"
        m.d.comb += acc.outputs.ready.eq(collecting)  # high exactly while in COLLECT
        m.d.sync += startable.eq(fsm.ongoing("WAIT") & ~startable & q.in_full[self.in_bank] & ~q.out_full[self.out_bank])
        m.d.sync += startable_ok.eq(q.in_ok[self.in_bank])  # read with startable, which is set a cycle after in_ok
        # the input bank's base follows `in_bank` a cycle late (the bank moves at least two cycles before the next
        # FETCH): the read address is a register plus `count`, with no state decode in front of the buffer
        in_base = Signal(range(BANKS * link.payload_len))
        m.d.sync += in_base.eq(self.in_bank * link.payload_len)
        m.d.comb += self.rd.addr.eq(in_base + self.count)
        # the running argmax follows the logits a registered beat behind, so the compare starts from registers
        with m.If(beat.valid & first_max):
            m.d.sync += [self.best.eq(beat.data), self.label.eq(beat.index)]

    def _load_states(self, fetched, next_in, next_out) -> None:
        """A load frame's chunk into the accelerator's `load` stream (which takes bytes only while it waits for
        an input), then a STATUS_LOADED response. `loaded_bytes` counts the weight image across chunks; the last
        chunk's padding past the image is dropped, and the count starts again after it."""
        m, link, q, acc = self.m, self.link, self.q, self.acc
        image = len(link.hw.weight_image())
        loaded_bytes = Signal(range(image + 1))
        with m.State("LOAD_FETCH"):  # the read port is addressed in every state: byte `count` arrives next
            m.d.comb += link.busy.eq(1)
            m.next = after_read(link, "LOAD_BYTE", "LOAD_LATCH")
        latch_states(link, m, "LOAD_BYTE", busy=True, name="LOAD_LATCH")
        with m.State("LOAD_BYTE"):
            in_image = loaded_bytes != image
            m.d.comb += [link.busy.eq(1), acc.load.valid.eq(in_image), acc.load.payload.eq(fetched)]
            with m.If(acc.load.ready | ~in_image):
                m.d.sync += [self.count.eq(self.count + 1), loaded_bytes.eq(loaded_bytes + in_image)]
                m.next = "LOAD_FETCH"
                with m.If(self.count == link.payload_len - 1):
                    m.next = "LOAD_DONE"
        with m.State("LOAD_DONE"):
            m.d.sync += [q.out_full[self.out_bank].eq(1), q.out_status[self.out_bank].eq(protocol.STATUS_LOADED),
                         q.in_full[self.in_bank].eq(0), self.in_bank.eq(next_in), self.out_bank.eq(next_out)]
            with m.If(loaded_bytes == image):
                m.d.sync += loaded_bytes.eq(0)
            m.next = "WAIT"


class _OutputBeat:
    """An output beat registered on its way to the argmax."""

    def __init__(self, store_bits: int, n_out: int):
        self.valid, self.last = Signal(name="beat_valid"), Signal(name="beat_last")
        self.data = Signal(signed(store_bits), name="beat_data")
        self.index = Signal(range(max(n_out, 2)), name="beat_index")


class _Transmitter:
    """A queued output bank as a response frame, the logits packed at the output format's width."""

    def __init__(self, link: HostLink, m: Module, tx: UARTTx, rd, q: _Queues):
        self.link, self.m, self.tx, self.rd, self.q = link, m, tx, rd, q
        self.total = Signal(8)
        self.send = Signal(8)
        # the checksum adds each sent byte the cycle after the UART takes it, from a register: the byte mux and
        # the adder are not one path (the UART's takes are two cycles apart or more, so the checksum byte, sent
        # last, reads a total that counts every byte before it)
        self.sent, self.count_sent = Signal(8), Signal()
        self.bank = Signal(range(BANKS))
        self.status = Signal(8)
        self.n_values = Signal(range(link.n_out + 1))
        bits = link.out_fmt.bits
        self.bits = Signal(bits + 8)
        self.nbits = Signal(range(bits + 9))
        m.d.comb += tx.bytes.payload.eq(self.send)

    def transmit(self, value, counted: bool = True):
        """Offer `value` on the UART; the returned condition is true when it is taken. A `counted` byte joins
        the checksum."""
        m = self.m
        m.d.comb += [self.send.eq(value), self.tx.bytes.valid.eq(1)]
        with m.If(self.tx.bytes.ready):
            m.d.sync += [self.sent.eq(self.send), self.count_sent.eq(counted)]
        return self.tx.bytes.ready

    def elaborate(self):
        m, link, q, status = self.m, self.link, self.q, self.status
        fmt = link.out_fmt
        out_base = Signal(range(BANKS * link.n_out))  # follows `bank` a cycle late, like the compute side's in_base
        m.d.sync += out_base.eq(self.bank * link.n_out)
        m.d.comb += self.rd.addr.eq(out_base + self.n_values)
        fetched = buffer_read(link, m, self.rd)
        m.d.sync += self.count_sent.eq(0)
        with m.If(self.count_sent):
            m.d.sync += self.total.eq(self.total + self.sent)
        with m.FSM(name="transmit"):
            with m.State("IDLE"):
                with m.If(q.out_full[self.bank]):
                    m.d.sync += [status.eq(q.out_status[self.bank]), link.label.eq(q.out_label[self.bank])]
                    m.next = "SYNC"
            with m.State("SYNC"):
                with m.If(self.transmit(protocol.SYNC_RESPONSE, counted=False)):
                    m.d.sync += self.total.eq(0)  # the checksum starts after the sync byte
                    m.next = "STATUS"
            with m.State("STATUS"):
                with m.If(self.transmit(status)):
                    with m.If(status == protocol.STATUS_OK):
                        m.next = "LABEL"
                    with m.Else():
                        m.next = "CHK"
            # the class and the count, 16 bits each, low byte first (`send` keeps a value's low 8 bits)
            header = [("LABEL", link.label), ("LABEL_HI", link.label >> 8), ("COUNT", link.n_out),
                      ("COUNT_HI", link.n_out >> 8)]
            for (state, value), following in zip(header, [name for name, _ in header[1:]] + ["READ"]):
                with m.State(state):
                    with m.If(self.transmit(value)):
                        m.next = following
                        if following == "READ":
                            m.d.sync += [self.n_values.eq(0), self.nbits.eq(0), self.bits.eq(0)]
            with m.State("READ"):  # addressed in every state (above): logit `n_values` arrives next
                m.next = after_read(link, "PACK")
            latch_states(link, m, "PACK")
            with m.State("PACK"):  # `fetched` holds logit `n_values`: append its low bits
                m.d.sync += [self.bits.eq(self.bits | (fetched[:fmt.bits] << self.nbits)),
                             self.nbits.eq(self.nbits + fmt.bits), self.n_values.eq(self.n_values + 1)]
                m.next = "BYTES"
            with m.State("BYTES"):
                last = self.n_values == link.n_out
                with m.If((self.nbits >= 8) | (last & (self.nbits != 0))):
                    with m.If(self.transmit(self.bits[:8])):
                        m.d.sync += [self.bits.eq(self.bits >> 8), self.nbits.eq(Mux(self.nbits >= 8, self.nbits - 8, 0))]
                with m.Elif(last):
                    m.next = "CHK"
                with m.Else():
                    m.next = "READ"
            with m.State("CHK"):
                with m.If(self.transmit(-self.total)):
                    m.d.sync += [q.out_full[self.bank].eq(0),
                                 self.bank.eq(next_bank(self.bank))]
                    m.next = "IDLE"
