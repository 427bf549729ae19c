"""Stream plumbing shared by the units: a small FIFO that cuts the combinational valid/ready paths."""
from __future__ import annotations

from amaranth import Cat, Module, Shape, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out


class StreamFIFO(wiring.Component):
    """`i` -> `depth` entries -> `o`, full throughput at depth 2.

    Why it is here: `i.ready` and `o.valid` are flip-flops of their own
    (`notfull`, `nonempty`), so a consumer's ready (its counters, compares and stalls) never
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
        depth = self.depth
        m.submodules.storage = storage = Memory(shape=Shape.cast(self.shape).width, depth=depth, init=[])
        w_port, r_port = storage.write_port(), storage.read_port(domain="comb")
        # `o.valid` and `i.ready` are flip-flops of their own (not compares of the level), so a consumer's ready
        # meets one gate before the read pointer (through amaranth's SyncFIFO, the engine's operand take reached
        # the walker FIFO's read pointer in four LUT levels: an OrangeCrab-25F critical path, 5.1 ns)
        # the pointers are one-hot rings: a push or pop rotates one (a clock enable, no wrap compare for yosys to
        # turn into a synchronous reset behind the enable), and the memory's address is an OR of its bits
        produce, consume = Signal(depth, init=1, name="produce"), Signal(depth, init=1, name="consume")
        level = Signal(range(depth + 1), name="level")
        nonempty, notfull = Signal(name="nonempty"), Signal(init=1, name="notfull")
        push, pop = Signal(), Signal()
        m.d.comb += [
            push.eq(self.i.valid & notfull), pop.eq(nonempty & self.o.ready),
            self.i.ready.eq(notfull), self.o.valid.eq(nonempty),
            w_port.addr.eq(_one_hot_index(produce)), w_port.data.eq(Value.cast(self.i.payload)), w_port.en.eq(push),
            r_port.addr.eq(_one_hot_index(consume)), self.o.payload.eq(r_port.data),
        ]
        with m.If(push):
            m.d.sync += produce.eq(produce.rotate_left(1))
        with m.If(pop):
            m.d.sync += consume.eq(consume.rotate_left(1))
        with m.If(push & ~pop):
            m.d.sync += [level.eq(level + 1), nonempty.eq(1), notfull.eq(level != depth - 1)]
        with m.If(pop & ~push):
            m.d.sync += [level.eq(level - 1), nonempty.eq(level != 1), notfull.eq(1)]
        level_next = level + push - pop
        m.d.comb += [self.ready_next.eq(level_next != depth), self.ready_unless_taken.eq(level + push < depth)]
        return m


def _one_hot_index(one_hot: Signal) -> Value:
    """The index of a one-hot value's set bit: bit b of it is the OR of the positions whose index has bit b."""
    width = max(1, (len(one_hot) - 1).bit_length())
    return Cat(*(Cat(*(one_hot[i] for i in range(len(one_hot)) if i >> b & 1)).any() for b in range(width)))


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
