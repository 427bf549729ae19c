"""The rows x cols output-stationary systolic array with edge skew and a result drain.

See docs/dataflow.md for the diagram and a cycle-by-cycle example.
"""
from __future__ import annotations

from amaranth import Module, Mux, Shape, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .pe import PE, PRODUCT_LATENCY, result_latency


class SystolicArray(wiring.Component):
    """C[i, j] = sum_k A[i, k] * W[k, j] for one rows x cols tile, k streamed one step per cycle.

    Each cycle (while `en`) the caller presents one k-step: `a` (a column of A,
    one value per row), `w` (a row of W, one value per column) and the flags.
    Row i's activation is delayed i cycles and column j's weight j cycles at
    the edge, so PE(i, j) sees operand pair k at cycle k + i + j.

    `tile_done` rises when PE(rows-1, cols-1) has captured the tile's last
    sum (`tile_done_next`: its value after the coming clock edge); then
    `snapshot` copies all results into the drain chain, which `shift` moves
    up one row per call, row 0 leaving at `out_row` (bit i of `shift` moves
    row i; a row below the last one still holding a result may be left
    where it is; `snapshot` and `shift` never rise together).
    Latency from the last k-step to `tile_done`: rows + cols - 2 + result_latency(product_stages) enabled cycles.
    The last `lut_pes` PEs in row-major order multiply in logic cells (HardwarePlan.lut_pes), cycle for cycle
    like the others.
    """

    def __init__(self, rows: int, cols: int, w_shape, a_shape, acc_bits: int, product_stages: int = PRODUCT_LATENCY,
                 lut_pes: int = 0):
        if rows < 1 or cols < 1:
            raise ValueError(f"array needs at least 1x1 PEs, got rows={rows!r} cols={cols!r}")
        if not 0 <= lut_pes <= rows * cols:
            raise ValueError(f"lut_pes must be 0 to {rows * cols}, got {lut_pes!r}")
        self.rows, self.cols, self.product_stages, self.lut_pes = rows, cols, product_stages, lut_pes
        self.w_shape, self.a_shape, self.acc_bits = Shape.cast(w_shape), Shape.cast(a_shape), acc_bits
        super().__init__({
            "en": In(1),
            "a": In(data.ArrayLayout(self.a_shape, rows)),
            "w": In(data.ArrayLayout(self.w_shape, cols)),
            "valid": In(1), "first": In(1), "last": In(1),
            "tile_done": Out(1), "tile_done_next": Out(1),
            "snapshot": In(1), "shift": In(rows),
            "out_row": Out(data.ArrayLayout(signed(acc_bits), cols)),
        })

    @property
    def latency(self) -> int:
        """Enabled cycles from the last k-step entering to `tile_done`."""
        return self.rows + self.cols - 2 + result_latency(self.product_stages)

    def elaborate(self, platform):
        m = Module()
        in_logic = self.rows * self.cols - self.lut_pes  # the first PE index whose multiplier is in logic cells
        pes = [[PE(self.w_shape, self.a_shape, self.acc_bits, self.product_stages,
                   "lut" if i * self.cols + j >= in_logic else None) for j in range(self.cols)]
               for i in range(self.rows)]
        for i, row in enumerate(pes):
            for j, pe in enumerate(row):
                m.submodules[f"pe_{i}_{j}"] = pe
                m.d.comb += pe.en.eq(self.en)

        # Edge: a bubble (valid low) enters as a zero activation with no flags, so every PE may accumulate on
        # every enabled cycle. Then the skew: row i's operand and flags pass through i registers, column j's
        # weight through j.
        for i in range(self.rows):
            a, first, last = Signal(self.a_shape, name=f"edge_a{i}"), Signal(name=f"edge_f{i}"), Signal(name=f"edge_l{i}")
            m.d.comb += [a.eq(Mux(self.valid, self.a[i], 0)), first.eq(self.valid & self.first),
                         last.eq(self.valid & self.last)]
            for d in range(i):
                na, nf, nl = (Signal(self.a_shape, name=f"skew_a{i}_{d}"), Signal(name=f"skew_f{i}_{d}"),
                              Signal(name=f"skew_l{i}_{d}"))
                with m.If(self.en):
                    m.d.sync += [na.eq(a), nf.eq(first), nl.eq(last)]
                a, first, last = na, nf, nl
            pe = pes[i][0]
            m.d.comb += [pe.a_in.eq(a), pe.first_in.eq(first), pe.last_in.eq(last)]
        for j in range(self.cols):
            w = self.w[j]
            for d in range(j):
                nw = Signal(self.w_shape, name=f"skew_w{j}_{d}")
                with m.If(self.en):
                    m.d.sync += nw.eq(w)
                w = nw
            m.d.comb += pes[0][j].w_in.eq(w)

        # Neighbour links: activations and flags move right, weights move down.
        for i in range(self.rows):
            for j in range(self.cols):
                pe = pes[i][j]
                if j + 1 < self.cols:
                    nxt = pes[i][j + 1]
                    m.d.comb += [nxt.a_in.eq(pe.a_out), nxt.first_in.eq(pe.first_out), nxt.last_in.eq(pe.last_out)]
                if i + 1 < self.rows:
                    m.d.comb += pes[i + 1][j].w_in.eq(pe.w_out)

        corner = pes[-1][-1]
        m.d.comb += [self.tile_done.eq(corner.done), self.tile_done_next.eq(corner.done_next)]

        # Drain chain: one register per PE, loaded all at once, moved up a row per shift. `shift` has a bit per
        # row (the engine keeps each in a register of its own), so no one net reaches every drain register; row
        # i's bit is its multiplexer's select, as `snapshot` and `shift` never rise in the same cycle.
        chain = [[Signal(signed(self.acc_bits), name=f"drain_{i}_{j}") for j in range(self.cols)] for i in range(self.rows)]
        for i in range(self.rows):
            for j in range(self.cols):
                with m.If(self.shift[i]):
                    m.d.sync += chain[i][j].eq(chain[i + 1][j] if i + 1 < self.rows else 0)
                with m.Elif(self.snapshot):
                    m.d.sync += chain[i][j].eq(pes[i][j].result)
        for j in range(self.cols):
            m.d.comb += self.out_row[j].eq(chain[0][j])
        return m
