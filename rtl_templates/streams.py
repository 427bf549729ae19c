"""Stream plumbing shared by the units: a small FIFO that cuts the combinational valid/ready paths."""
from __future__ import annotations

from amaranth import Module, Shape, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out


class StreamFIFO(wiring.Component):
    """`i` -> `depth` entries -> `o`, full throughput at depth 2.

    Why it is here: `i.ready` and `o.valid` come from the FIFO's level
    register, so a consumer's ready (its counters, compares and stalls) never
    reaches the producer in the same cycle, and the producer's output logic
    never reaches the consumer's. Latency: one cycle from `i` to `o`.

    `ready_next` is the value `i.ready` takes after the coming clock edge, for a producer that works out its own
    stall a cycle ahead and keeps it in a register (`WindowWalker`, `EltwiseUnit`: their stall enables every
    block RAM of the arena). `ready_unless_taken` is the same without counting what `o` gives this cycle: a
    producer that reads it sees none of the consumer's logic (its ready) and needs depth 3 for full throughput
    (`WindowWalker`: the engine's and the max unit's readiness through the kind multiplexer were the
    iCEBreaker's critical path, 28.8 ns).
    """

    def __init__(self, shape, depth: int = 2):
        if depth < 2:
            raise ValueError(f"a StreamFIFO needs depth >= 2 for full throughput, got {depth!r}")
        self.shape, self.depth = shape, depth
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape)), "ready_next": Out(1),
                          "ready_unless_taken": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFO(width=Shape.cast(self.shape).width, depth=self.depth)
        m.d.comb += [
            fifo.w_data.eq(Value.cast(self.i.payload)),
            fifo.w_en.eq(self.i.valid), self.i.ready.eq(fifo.w_rdy),
            self.o.valid.eq(fifo.r_rdy), self.o.payload.eq(fifo.r_data), fifo.r_en.eq(self.o.ready),
        ]
        level_next = fifo.level + (self.i.valid & self.i.ready) - (self.o.valid & self.o.ready)
        m.d.comb += [self.ready_next.eq(level_next != self.depth),
                     self.ready_unless_taken.eq(fifo.level + (self.i.valid & self.i.ready) < self.depth)]
        return m


class LookaheadEnable:
    """A stall or enable that fans out widely, kept as a register whose next value is worked out a cycle ahead.

    The logic that works out that next value often reads the enable itself (a stage holds while it is low).
    On the fanned-out net, that loop pays the net's routing (3.3 ns of the ULX3S-85F digits_cnn's 9.5 ns
    critical path, through the drain's `shift`), so the loop reads `local`: a second register with the same
    value, stored inverted so that yosys does not merge the two.
    """

    def __init__(self, name: str, init: int = 1):
        self.fanout = Signal(init=init, name=name)
        self._twin_n = Signal(init=1 - init, name=f"{name}_twin_n")
        self.local = ~self._twin_n
        self.next = Signal(name=f"{name}_next")  # the value `fanout` takes after the coming edge (`kept_copy`)

    def update(self, m: Module, next_value) -> None:
        m.d.comb += self.next.eq(next_value)
        m.d.sync += [self.fanout.eq(self.next), self._twin_n.eq(~self.next)]


# A register whose name ends in KEPT_SUFFIX keeps a flip-flop of its own through synthesis: hwgen.synth runs
# KEEP_SCRIPT, which marks those flip-flops `keep`, so yosys's opt_merge does not fold copies that share a next
# value back into one net (a `keep` on the wire alone does not stop it)
KEPT_SUFFIX = "_kept"
KEEP_SCRIPT = f"setattr -set keep 1 w:*{KEPT_SUFFIX} %ci1:+$dff[Q] t:$dff %i"


def kept_copy(m: Module, name: str, next_value, init: int) -> Signal:
    """A register of its own holding what `next_value` was a cycle ago, for one group of a wide fan-out (each
    arena replica's read enable); `init` is the value of the register it copies."""
    copy = Signal(init=init, name=f"{name}{KEPT_SUFFIX}")
    m.d.sync += copy.eq(next_value)
    return copy
