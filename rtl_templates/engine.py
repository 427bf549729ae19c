"""Tile engine: the systolic array between an operand stream and a requantized result stream."""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Shape, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .array import SystolicArray
from .family import unless_ice40
from .pe import PRODUCT_LATENCY
from hwgen.fixed import LEAKY_MAX_SHIFT, shift_bits

from .requant import PIPELINED_LATENCY, ActivationSupport, Requantizer
from .streams import LookaheadEnable, StreamFIFO, kept_copy

REQUANT_LATENCY = PIPELINED_LATENCY  # registered requantizer stages between the drain row and `results`
OUT_FIFO_LATENCY = 1                 # the results FIFO behind them (streams.StreamFIFO)
OPERAND_STAGE_LATENCY = 1            # the operand register in front of the array (`operand_stage`)


class TileEngine(wiring.Component):
    """C_tile = requant(A_tile @ W_tile + b): one rows x cols output tile per K-step burst.

    Streams (valid/ready, amaranth.lib.stream):
    - `operands`: one beat per k-step: `a` (rows activations), `w` (cols
      weights), `last` on the tile's final k-step. The next beat starts a new tile.
    - `params`: one beat per tile, in tile order: per-column `bias` (already on
      the accumulator grid) and `shift`; read while the tile drains, taken the
      cycle after its last row leaves.
    - `results`: `rows` beats per tile, row 0 first: `cols` requantized values
      and their saturation flags.
    The output format and activation (`neg_shift`, `clamp_lo`, `clamp_hi`, `lo`, `hi`) are
    plain inputs, constant while a layer runs.

    Cycle model (no backpressure): a tile of depth K holds the operand stream
    for max(K, rows + cols - 1) cycles (the next tile's last k-step must not
    reach PE(0, 0) before this tile's results are copied to the drain chain),
    its first row leaves rows + cols - 1 + RESULT_LATENCY + REQUANT_LATENCY
    + OUT_FIFO_LATENCY cycles after its last k-step (the PEs' operand,
    product, accumulator and result registers, the requantizer's registered
    stages, the results FIFO), then one row per cycle. Whole problem:
    (tiles - 1) * max(K, rows + cols - 1) + K + 2 * rows + cols - 2
    + RESULT_LATENCY + REQUANT_LATENCY + OUT_FIFO_LATENCY cycles from the
    first k-step to the last row (RESULT_LATENCY: `pe.result_latency` of
    `product_stages`), and OPERAND_STAGE_LATENCY more with `operand_stage`.
    """

    def __init__(self, rows: int, cols: int, w_shape, a_shape, acc_bits: int, out_bits: int,
                 max_right: int, max_left: int, support: ActivationSupport = ActivationSupport(),
                 product_stages: int = PRODUCT_LATENCY, consumer_free: bool | None = None,
                 operand_stage: bool | None = None, lut_pes: int = 0):
        """`consumer_free`: the results FIFO's room is counted without the row the consumer may take this cycle
        (three entries); `operand_stage`: each k-step registered before the array (OPERAND_STAGE_LATENCY). None
        for either: everywhere but on the iCE40 (the UP5K is full). `lut_pes`: the array's PEs whose multiplier is
        in logic cells (SystolicArray)."""
        self.rows, self.cols, self.support, self.product_stages = rows, cols, support, product_stages
        self.consumer_free, self.operand_stage, self.lut_pes = consumer_free, operand_stage, lut_pes
        self.w_shape, self.a_shape, self.acc_bits, self.out_bits = Shape.cast(w_shape), Shape.cast(a_shape), acc_bits, out_bits
        self.max_right, self.max_left = max_right, max_left
        out_shape = signed(out_bits + 1)
        self.operand_layout = data.StructLayout({
            "a": data.ArrayLayout(self.a_shape, rows), "w": data.ArrayLayout(self.w_shape, cols), "last": 1})
        self.param_layout = data.StructLayout({
            "bias": data.ArrayLayout(signed(acc_bits), cols),
            "shift": data.ArrayLayout(signed(shift_bits(max_right, max_left)), cols)})
        self.result_layout = self.result_layout_for(cols, out_bits)
        super().__init__({
            "operands": In(stream.Signature(self.operand_layout)),
            "params": In(stream.Signature(self.param_layout)),
            "params_ready_next": Out(1),  # the value params.ready takes after the coming edge
            "results": Out(stream.Signature(self.result_layout)),
            "neg_shift": In(range(LEAKY_MAX_SHIFT + 1)), "clamp_lo": In(signed(out_bits + 2)),
            "clamp_hi": In(signed(out_bits + 2)), "lo": In(out_shape), "hi": In(out_shape),
        })

    @staticmethod
    def result_layout_for(cols: int, out_bits: int) -> data.StructLayout:
        return data.StructLayout({"data": data.ArrayLayout(signed(out_bits + 1), cols), "saturated": cols})

    @property
    def min_tile_period(self) -> int:
        """Fewest cycles between two tiles' last k-steps."""
        return self.rows + self.cols - 1

    def elaborate(self, platform):
        m = Module()
        m.submodules.array = array = SystolicArray(self.rows, self.cols, self.w_shape, self.a_shape, self.acc_bits,
                                                   self.product_stages, self.lut_pes)

        pending = Signal(range(self.rows + 1))     # rows still in the drain chain
        cooldown = Signal(range(self.min_tile_period))
        first = Signal(init=1)                     # the next k-step starts a tile

        # The array stalls only when a finished tile waits for the drain chain to empty. That enable reaches every
        # PE, so it comes straight from a register, worked out a cycle ahead from the next `tile_done` and
        # `pending`: en == ~(tile_done & (pending != 0)) on every cycle.
        # `pending != 0` and `pending == 1` are kept as flags beside the count, so the enable's next value is a few
        # gates from registers rather than a decrement and a compare
        # The snapshot (tile_done & ~pending_nz) is a register worked out the same way, so the route from the
        # corner PE does not lead on into the drain rows' shift registers (the ULX3S-85F's critical path, 8.1 ns).
        en, en_next, pending_next = Signal(init=1, name="array_en"), Signal(), Signal.like(pending)
        pending_nz, pending_one = Signal(name="pending_nz"), Signal(name="pending_one")
        nz_next, one_next = Signal(), Signal()
        snapshot = Signal(name="snapshot")
        m.d.comb += [array.en.eq(en), array.snapshot.eq(snapshot), pending_next.eq(pending),
                     nz_next.eq(pending_nz), one_next.eq(pending_one), en_next.eq(~(array.tile_done_next & nz_next))]
        m.d.sync += [pending.eq(pending_next), pending_nz.eq(nz_next), pending_one.eq(one_next),
                     en.eq(en_next), snapshot.eq(array.tile_done_next & ~nz_next)]
        with m.If(array.snapshot):
            m.d.comb += [pending_next.eq(self.rows), nz_next.eq(1), one_next.eq(self.rows == 1)]

        # `cooling` == (cooldown != 0), kept as a register so a tile's last k-step meets one gate before `ready`
        # (the operand FIFO's read enable and level)
        cooling = Signal()
        # the operand side reads a copy of the enable of its own (`kept_copy`): `array_en` reaches every PE and
        # sits among them, and from there to the walker's FIFO read was the ULX3S-85F's critical path (8.7 ns,
        # 6.8 of it routing)
        en_here = kept_copy(m, "array_en_operands", en_next, 1)
        # (`operand_stage`) each k-step waits in a register before the array, taken whenever that register is
        # empty or moves on: the take, the cooldown and PE(0, 0)'s operands start from flip-flops and not from
        # the walker's FIFO's distributed RAM (its read, through the k-step's `last` into `cooldown`, the
        # OrangeCrab-25F's critical path, 5.2 ns; into PE(0, 0)'s MULT18X18D, the ULX3S-85F's, 8.2 ns)
        if unless_ice40(self.operand_stage, platform):
            step, step_valid = Signal(self.operand_layout, name="operand_step"), Signal(name="operand_valid")
            take = Signal()
            m.d.comb += [take.eq(step_valid & en_here & ~(step.last & cooling)),
                         self.operands.ready.eq(~step_valid | take)]
            with m.If(self.operands.ready):
                m.d.sync += [step.eq(self.operands.payload), step_valid.eq(self.operands.valid)]
        else:
            step = self.operands.payload
            m.d.comb += self.operands.ready.eq(en_here & ~(step.last & cooling))
            take = self.operands.valid & self.operands.ready
        m.d.comb += [
            array.a.eq(step.a), array.w.eq(step.w),
            array.valid.eq(take), array.first.eq(first), array.last.eq(step.last),
        ]
        with m.If(take):
            m.d.sync += first.eq(step.last)
        with m.If(take & step.last):
            m.d.sync += [cooldown.eq(self.min_tile_period - 1), cooling.eq(self.min_tile_period > 1)]
        with m.Elif(en_here & cooling):
            m.d.sync += [cooldown.eq(cooldown - 1), cooling.eq(cooldown != 1)]

        # Output side: requantize drain row 0 with the tile's per-column parameters, in REQUANT_LATENCY
        # registered stages, then the results FIFO; the drain shifts whenever the pipeline advances (its last
        # stage is empty or taken by the FIFO) and a row may leave (`drained`).
        # `advance` enables every requantizer register and `shift` every drain register, so each is a register,
        # worked out a cycle ahead from what the stage flags, the FIFO's room (`ready_next`) and the drain's
        # conditions will be; nothing but a gate lies between them and the fan-out.
        # `drained` == pending_nz & params.valid & ~owed, as a register: a parameter word that is valid and not
        # taken stays valid (the stream's rule); one that is not valid yet, or is being taken now, counts as
        # absent for a cycle. That cycle falls after a tile's last row has left, before the next tile's first row
        # can leave only while the requantizer's stages still hold rows to write.
        # the FIFO's room is counted without the row the consumer may take this cycle (three entries), so the MAC
        # writer's consume does not reach `advance` and `shift` (the ULX3S-85F's critical path, 8.6 ns, into
        # shift_row7); the iCE40 keeps two entries (its UP5K is full), as the walker's FIFO does
        consumer_free = unless_ice40(self.consumer_free, platform)
        m.submodules.out = out = StreamFIFO(self.result_layout, depth=3 if consumer_free else 2)
        wiring.connect(m, out.o, wiring.flipped(self.results))
        stage_valid = [Signal(name=f"requant_valid{i}") for i in range(REQUANT_LATENCY)]
        advance_en, shift_en = LookaheadEnable("requant_advance"), LookaheadEnable("shift", init=0)
        advance, shift = advance_en.fanout, shift_en.fanout     # to every requantizer / drain register
        drained = Signal(name="drain_ok")
        owed, last_row = Signal(), Signal()
        advance_next, drained_next = Signal(), Signal()
        m.d.comb += [
            last_row.eq(shift_en.local & pending_one),
            advance_next.eq(~Mux(advance_en.local, (drained, *stage_valid)[-2], stage_valid[-1])
                            | (out.ready_unless_taken if consumer_free else out.ready_next)),
            drained_next.eq(nz_next & self.params.valid & ~owed & ~last_row),
        ]
        m.d.sync += drained.eq(drained_next)
        advance_en.update(m, advance_next)
        shift_en.update(m, advance_next & drained_next)
        for j in range(self.cols):
            rq = Requantizer(self.acc_bits, self.out_bits, self.max_right, self.max_left, self.support, pipelined=True)
            m.submodules[f"requant_{j}"] = rq
            m.d.comb += [
                rq.en.eq(advance), rq.acc.eq(array.out_row[j]), rq.bias.eq(self.params.payload.bias[j]),
                rq.shift.eq(self.params.payload.shift[j]),
                rq.neg_shift.eq(self.neg_shift), rq.clamp_lo.eq(self.clamp_lo), rq.clamp_hi.eq(self.clamp_hi),
                rq.lo.eq(self.lo), rq.hi.eq(self.hi),
                out.i.payload.data[j].eq(rq.y), out.i.payload.saturated[j].eq(rq.saturated),
            ]
        with m.If(advance):
            m.d.sync += [stage_valid[0].eq(drained)] + [stage_valid[i].eq(stage_valid[i - 1])
                                                         for i in range(1, REQUANT_LATENCY)]
        # a row enters the FIFO as the last stage moves on (`advance` is high only while the FIFO has room); the
        # three-entry form's room leaves out the row being taken, so a held stage may face a FIFO with room
        m.d.comb += out.i.valid.eq(stage_valid[-1] & advance)
        # The tile's parameters are taken from the cycle after its last row leaves: `owed` is a register, so the
        # parameter reader's advance does not hang off the requantizer's. Nothing drains in that cycle (pending
        # is 0 until the next snapshot, a cycle later at the earliest), so no cycle is lost; a drain waits while
        # the old parameters are still owed (a producer that drops `valid`).
        m.d.comb += [self.params.ready.eq(owed), self.params_ready_next.eq(last_row | (owed & ~self.params.valid))]
        with m.If(last_row):
            m.d.sync += owed.eq(1)
        with m.Elif(self.params.valid):
            m.d.sync += owed.eq(0)
        # the drain rows' own shift registers: row k moves while it is filled (pending > k, the thermometer
        # `filled`), so each register's next value differs and synthesis keeps them apart; row 0's is `shift`
        filled, filled_next = Signal(self.rows, name="drain_filled"), Signal(self.rows)
        m.d.comb += filled_next.eq(filled)
        m.d.sync += filled.eq(filled_next)
        with m.If(array.snapshot):
            m.d.comb += filled_next.eq(-1)
        with m.Elif(shift_en.local):
            m.d.comb += filled_next.eq(filled >> 1)
        row_shift = [shift] + [Signal(name=f"shift_row{k}") for k in range(1, self.rows)]
        m.d.sync += [row_shift[k].eq(advance_next & drained_next & filled_next[k]) for k in range(1, self.rows)]
        m.d.comb += array.shift.eq(Cat(*row_shift))
        with m.If(shift_en.local):
            m.d.comb += [pending_next.eq(pending - 1), nz_next.eq(~pending_one),
                         one_next.eq(pending == 2)]
        return m
