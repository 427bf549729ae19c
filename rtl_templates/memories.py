"""Memories split into block-RAM-deep banks, each bank's output registered before the bank multiplexer.

Why: a memory deeper than one block RAM becomes several blocks whose outputs
yosys joins with a multiplexer, so the block RAM's clock-to-output delay (4.3
ns on ECP5, whose DP16KD yosys maps without its output register) and that
multiplexer share one clock period. ResNet-8's activation arena, 26 blocks
deep, closed at 60.8 MHz on the ULX3S-85F with exactly that path. Here each
bank is one block deep on ECP5 (wide words may take deeper banks; on iCE40,
2048 words: see block_depth), its
output lands in a register, and the multiplexer runs from those registers
(its select delayed alongside).

The read address is registered before the banks (the callers' address adders
and multiplexers end there, and a register alone drives the block RAMs'
address pins, which sit all over the die in a large design). Read latency is
READ_LATENCY (3) enabled cycles on every target and for every bank count, so
the cycle model and the units' pipelines do not depend on the board; `en`
holds every stage.
"""
from __future__ import annotations

from amaranth import Array, Cat, ClockSignal, Const, Instance, Module, Mux, Shape, Signal, Value, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwgen.fit import BRAM_MODES, ecp5_bank_depth, part_depths
from hwgen.hwplan.model import READ_LATENCIES, SPRAM_WORDS

from .family import family_of

# enabled cycles from `rd_addr` to `rd_data`: the address register, the block, the bank register; the plan may
# ask for one more, a registered group level in the bank multiplexer (HardwarePlan.read_latency)
READ_LATENCY = READ_LATENCIES[0]
GROUP_BANKS = 4  # banks per group of the registered level: a 4:1 multiplexer is two LUT4s and a PFUMX on ECP5
WRITE_STAGE_LATENCY = 1  # cycles a write waits in the write stage (BankedMemory `write_stage`) before it lands
# A writable bank's memory name starts with this: synthesis marks those memories' read-during-write collisions as
# undefined (`COLLISION_X_MASK`), so yosys builds no address compare and bypass register around each block RAM
RAM_BANK = "ram_bank"
COLLISION_X_SCRIPT = f"setparam -set COLLISION_X_MASK 1'1 */t:$memrd_v2 */r:MEMID=\\{RAM_BANK}* %i"
# A single-ported bank's memory name starts with this. Amaranth gives every memory initial contents (zeros), and
# an SPRAM has none, so yosys would find no mapping: synthesis drops those memories' $meminit cells (the arena
# is written before it is read)
SPRAM_BANK = "spram_bank"
SPRAM_INIT_SCRIPT = f"delete */t:$meminit_v2 */r:MEMID=\\{SPRAM_BANK}* %i"

# iCE40: the SB_RAM40_4K's deepest mode (2048 x 2), blocks side by side: the UP5K is bound by logic cells, not by
# its block RAM's output delay, and every bank costs a register per bit and a multiplexer input.
ICE40_BANK_DEPTH = 2048


# DP16KD's modes (the fit's ECP5 table, 512 words or deeper) by depth: the word width, and the low address bits
# the mode leaves unused (AD[13:k] addresses a word, k = log2(16384 / depth), as in yosys's own mapping,
# share/lattice/brams_map_16kd.v); in the 18-bit mode AD1 and AD0 enable the write of the word's two 9-bit
# halves. The 36-bit mode is pseudo-dual-port (port B reads the word, DOA its low half and DOB its high half):
# hwgen takes it for ROMs only (ROM_ONLY_DEPTHS).
DP16KD_MODES = {depth: (width, (16384 // depth).bit_length() - 1)
                for width, depth in BRAM_MODES["ecp5"] if depth >= 512}
DP16KD_INIT_DEPTHS = (2048, 1024, 512)  # the modes a bank with initial contents may take (dp16kd_initvals)
ROM_ONLY_DEPTHS = (512,)


def dp16kd_initvals(words: list[int], width: int) -> dict[str, Const]:
    """INITVAL_00..3F of a DP16KD holding `words` (each < 2**width) in the 36-, 18- or 9-bit mode: 1024 slots of
    20 bits, 16 per INITVAL, each slot's low 18 bits one 18-bit word, two 9-bit words (the even one low) or half
    a 36-bit word (the low half in the even slot). This is the layout yosys's DP16KD mapping writes
    (share/lattice/brams_map_16kd.v; tests/test_synth.py compares it with yosys's on a ROM of each mode)."""
    if width not in (9, 18, 36):
        raise ValueError(f"initial contents only in the 9-, 18- and 36-bit modes, got width {width!r}")
    per_slot = 18 // width if width <= 18 else 1
    slots = [0] * 1024
    for i, word in enumerate(words):
        word &= (1 << width) - 1
        if width == 36:
            slots[2 * i], slots[2 * i + 1] = word & 0x3FFFF, word >> 18
        else:
            slots[i // per_slot] |= word << (width * (i % per_slot))
    return {f"p_INITVAL_{idx:02X}": Const(sum(slots[idx * 16 + j] << (20 * j) for j in range(16)), 320)
            for idx in range(64)}


def block_depth(family: str | None, width: int, depth: int) -> int:
    """A bank's depth for a memory of `depth` words of `width` bits on `family`. ECP5, and simulation without a
    board (the smaller banks, so more of the multiplexer is exercised): one DP16KD deep, so no block RAM output
    meets a multiplexer, or deeper for a word wider than a block (hwgen.fit.ecp5_bank_depth)."""
    return ICE40_BANK_DEPTH if family == "ice40" else ecp5_bank_depth(width, depth)


class BankedMemory(wiring.Component):
    """One read port (latency READ_LATENCY) and, if `writable`, one write port (address, data, en).

    A read of the address being written in the same cycle returns an undefined
    value in synthesis (old data in simulation): the user must never use such a
    read. The accelerator never does: a layer's output slot never overlaps its
    inputs, and the next layer starts after the last write has landed; reads it
    discards (pad positions, the idle element-wise unit) may collide.

    `bank_depth` None takes one block RAM's depth for the platform's family;
    a test passes a small one to exercise the bank multiplexer.
    """

    FORMS = ("generic", "ecp5")

    def __init__(self, shape, depth: int, init=(), writable: bool = True, bank_depth: int | None = None,
                 form: str | None = None, write_stage: bool | None = None, latency: int = READ_LATENCY,
                 single_port: bool = False):
        """`form`: None picks from the platform ("ecp5" on ECP5 where `uses_dp16kd` holds); "generic" or "ecp5"
        force one, so a test can put both side by side. `write_stage`: the write port registered once more
        inside the memory, each bank's write enable decoded into a register of its own, so a write lands a
        cycle later (WRITE_STAGE_LATENCY); None: on ECP5 only (the UP5K cannot spare the flip-flops).
        `latency` READ_LATENCY + 1 registers the bank multiplexer's first level (groups of GROUP_BANKS banks):
        the route from a block RAM spread across the die then ends at a group register, and the rest of the
        multiplexer runs from registers (ResNet-8's and the FC autoencoder's critical paths on the ULX3S-85F,
        a DP16KD's output routed into the whole multiplexer, 11.9 and 11.5 ns). READ_LATENCY + 2 also puts a
        register beside each bank before that level, so placement may split the route from a far block RAM
        to its group register in two (that route, 5.7-7.9 ns, was next).

        `single_port`: each bank iCE40 SPRAMs (SPRAM_WORDS deep, `ram_style` "huge", which yosys maps to
        SB_SPRAM256KA, 16 bits wide, side by side for wider words): its one address is the write's where the
        bank writes, else the read's, and a read in a cycle its bank writes is lost. The caller keeps reads and
        writes of one bank apart (the arena by placement: hwplan.allocation.banked; the weights by loading
        only while no layer runs); reads it discards may meet a write."""
        if single_port and (not writable or any(init)):
            raise ValueError("a single-ported memory is writable and starts empty")
        self.single_port = single_port
        if latency not in READ_LATENCIES:
            raise ValueError(f"latency must be one of {READ_LATENCIES}, got {latency!r}")
        self.latency = latency
        if form not in (None, *self.FORMS):
            raise ValueError(f"form must be one of {self.FORMS} or None, got {form!r}")
        self.form = form
        self.shape, self.depth, self.init = Shape.cast(shape), depth, list(init)
        if bank_depth is not None and (bank_depth < 2 or bank_depth & (bank_depth - 1)):
            raise ValueError(f"bank_depth must be a power of 2 from 2 on, got {bank_depth!r}")
        self.writable, self.bank_depth, self.write_stage = writable, bank_depth, write_stage
        addr = range(max(depth, 2))
        ports = {"rd_addr": In(addr), "rd_en": In(1), "rd_data": Out(self.shape)}
        if writable:
            ports |= {"wr_addr": In(addr), "wr_data": In(self.shape), "wr_en": In(1)}
        super().__init__(ports)

    def banks(self, platform=None) -> int:
        return -(-self.depth // self._bank_depth(platform))

    def _bank_depth(self, platform) -> int:
        """A bank's depth: `bank_depth`, or the family's (block_depth)."""
        if self.bank_depth is not None:
            return self.bank_depth
        if self.single_port:
            return SPRAM_WORDS
        return block_depth(family_of(platform), self.shape.width, self.depth)

    def uses_dp16kd(self, platform) -> bool:
        """The ECP5 form: each bank one column of DP16KD instances with the output register on (REGMODE
        "OUTREG"), the bank register inside the block, so a block RAM's clock-to-out (5.8 ns on the ULX3S-85F's
        speed grade) no longer shares a period with the route to the fabric (DS-CNN's and ResNet-8's critical
        paths). yosys's mapping has no output register option, so the cell is instantiated, for banks of a
        DP16KD mode's depth; initial contents (a ROM) in the 9-, 18- and 36-bit modes, whose INITVAL layout is
        yosys's own mapping's (`dp16kd_initvals`); the 36-bit mode for ROMs only (the weight and parameter ROMs'
        wide words, DS-CNN's and the FC autoencoder's critical paths). sim/models/DP16KD.v models it on
        Verilator."""
        form = self.form or ("ecp5" if family_of(platform) == "ecp5" and not self.single_port else "generic")
        depth = self._bank_depth(platform)
        return (form == "ecp5" and depth in DP16KD_MODES and (not any(self.init) or depth in DP16KD_INIT_DEPTHS)
                and not (self.writable and depth in ROM_ONLY_DEPTHS))

    def _bank_multiplexer(self, m: Module, held: list, sel) -> None:
        """rd_data = held[sel], directly or (latency READ_LATENCY + 1) through a registered level of groups, or
        (READ_LATENCY + 2) from a register beside each bank through that level."""
        def select(out, inputs, index):
            with m.Switch(index):
                for b, value in enumerate(inputs):
                    with m.Case(b):
                        m.d.comb += out.eq(value)

        if self.latency == READ_LATENCY:
            select(self.rd_data, held, sel)
            return
        if self.latency == READ_LATENCY + 2:
            near = [Signal(self.shape, name=f"bank{b}_near", reset_less=True) for b in range(len(held))]
            sel_near = Signal.like(sel, name="sel_near", reset_less=True)
            with m.If(self.rd_en):
                m.d.sync += [reg.eq(value) for reg, value in zip(near, held)]
                m.d.sync += sel_near.eq(sel)
            held, sel = near, sel_near
        width = (GROUP_BANKS - 1).bit_length()
        groups = [held[g:g + GROUP_BANKS] for g in range(0, len(held), GROUP_BANKS)]
        group_q = [Signal(self.shape, name=f"group{g}_q", reset_less=True) for g in range(len(groups))]
        sel3 = Signal(range(max(len(groups), 2)), reset_less=True)  # the group read, at the group registers
        for g, (members, reg) in enumerate(zip(groups, group_q)):
            picked = Signal(self.shape, name=f"group{g}")
            if len(members) > 1:
                select(picked, members, sel[:width])
            else:
                m.d.comb += picked.eq(members[0])
            with m.If(self.rd_en):
                m.d.sync += reg.eq(picked)
        with m.If(self.rd_en):
            m.d.sync += sel3.eq(sel >> width)
        select(self.rd_data, group_q, sel3)

    def registers_writes(self, platform) -> bool:
        """Whether writes pass the extra stage (`write_stage`, or the platform's family when None)."""
        if not self.writable:
            return False
        return self.write_stage if self.write_stage is not None else family_of(platform) == "ecp5"

    def elaborate(self, platform):
        m = Module()
        bank_depth = self._bank_depth(platform)
        banks = self.banks(platform)
        dp16kd = self.uses_dp16kd(platform)
        low = max(bank_depth - 1, 1).bit_length() if banks > 1 else len(self.rd_addr)
        self._write_port(m, platform, banks, low)
        # the address registered first: the caller's address logic (adders, the walker / element-wise
        # multiplexer) ends here, and only a register drives the block RAMs' address pins across the die
        addr = Signal.like(self.rd_addr, name="rd_addr_q", reset_less=True)
        sel1 = Signal(range(max(banks, 2)), reset_less=True)  # the bank read: at the blocks' outputs
        sel2 = Signal.like(sel1, reset_less=True)              # ... and at the bank registers
        held = [Signal(self.shape, name=f"bank{b}_q", reset_less=True) for b in range(banks)]
        with m.If(self.rd_en):
            m.d.sync += [addr.eq(self.rd_addr), sel1.eq(addr >> low), sel2.eq(sel1)]
        self._bank_multiplexer(m, held, sel2)
        for b in range(banks):
            if dp16kd:
                m.d.comb += held[b].eq(self._dp16kd_bank(m, b, bank_depth, low, addr))
                continue
            size = min(bank_depth, self.depth - b * bank_depth)
            if self.single_port:  # one address: the write's where the bank writes, else the read's
                bank = Memory(shape=self.shape, depth=size, init=[], attrs={"ram_style": "huge"})
                m.submodules[f"{SPRAM_BANK}{b}"] = bank
                rd_addr = wr_addr = Mux(self._wr_bank[b], self._wr_addr[:low], addr[:low])
                rd_en = self.rd_en & ~self._wr_bank[b]
            else:
                bank = Memory(shape=self.shape, depth=size, init=self.init[b * bank_depth:b * bank_depth + size])
                m.submodules[f"{RAM_BANK}{b}" if self.writable else f"rom_bank{b}"] = bank
                rd_addr, wr_addr, rd_en = addr[:low], self._wr_addr[:low] if self.writable else None, self.rd_en
            rd = bank.read_port()
            m.d.comb += [rd.addr.eq(rd_addr), rd.en.eq(rd_en)]
            with m.If(self.rd_en):
                m.d.sync += held[b].eq(rd.data)
            if self.writable:
                wr = bank.write_port()
                m.d.comb += [wr.addr.eq(wr_addr), wr.data.eq(self._wr_data), wr.en.eq(self._wr_bank[b])]
        return m

    def _write_port(self, m: Module, platform, banks: int, low: int) -> None:
        """The address, data and per-bank enables the banks write with: the ports themselves, or (write stage)
        registers of them. Registered, the bank decode ends in a flip-flop per bank, and only flip-flops drive
        the block RAMs' write pins (DS-CNN's critical path on the ULX3S-85F: the decode and its route to 16
        arena copies' blocks, 11.2 ns)."""
        if not self.writable:
            return
        bank_writes = [self.wr_en & ((self.wr_addr >> low) == b) for b in range(banks)]
        if not self.registers_writes(platform):
            self._wr_addr, self._wr_data, self._wr_bank = self.wr_addr, self.wr_data, bank_writes
            return
        self._wr_addr = Signal.like(self.wr_addr, name="wr_addr_q", reset_less=True)
        self._wr_data = Signal.like(self.wr_data, name="wr_data_q", reset_less=True)
        self._wr_bank = [Signal(name=f"bank{b}_we_q") for b in range(banks)]
        m.d.sync += [self._wr_addr.eq(self.wr_addr), self._wr_data.eq(self.wr_data)]
        m.d.sync += [reg.eq(en) for reg, en in zip(self._wr_bank, bank_writes)]

    def _dp16kd_bank(self, m: Module, b: int, bank_depth: int, low: int, addr: Signal):
        """Bank `b` as DP16KD blocks side by side (port A writes, port B reads through its output register, both
        stages enabled by `rd_en` like the generic form's block and bank register); its registered word."""
        width, skip = DP16KD_MODES[bank_depth]
        byte_enables = Const(0b11 if width == 18 else 0, 4)  # the 18-bit mode writes both halves
        write = Signal(name=f"bank{b}_we")
        if self.writable:
            m.d.comb += write.eq(self._wr_bank[b])
            wr_ad, wr_data = Cat(byte_enables[:skip], self._wr_addr[:low]), Value.cast(self._wr_data)
        else:
            wr_ad, wr_data = Const(0, 14), Const(0, self.shape.width)
        contents = self.init[b * bank_depth:(b + 1) * bank_depth]
        rd_ad = Cat(Const(0, skip), addr[:low])
        words = []
        # the 36-bit mode (ROM_ONLY_DEPTHS): port B's address reads the whole word, DOA its low half; port A stays
        # disabled (CEA low, as in yosys's own mapping of a ROM), and both ports' output registers load with the
        # read (OCEA, OCEB), as the memory usage guide does not say which one holds DOA's half
        wide = width == 36
        for k in range(-(-self.shape.width // width)):
            data_in = Signal(18, name=f"bank{b}_di{k}")
            data_out = Signal(width if wide else 18, name=f"bank{b}_do{k}")
            piece = wr_data[k * width:(k + 1) * width]
            m.d.comb += data_in.eq(piece)
            ports = {f"i_ADA{i}": wr_ad[i] if i < len(wr_ad) else 0 for i in range(14)}
            ports |= {f"i_ADB{i}": rd_ad[i] if i < len(rd_ad) else 0 for i in range(14)}
            ports |= {f"i_DIA{i}": data_in[i] for i in range(18)} | {f"i_DIB{i}": 0 for i in range(18)}
            ports |= {f"o_DOB{i}": data_out[18 + i if wide else i] for i in range(18)}
            ports |= {f"o_DOA{i}": data_out[i] for i in range(18)} if wide else {}
            ports |= {f"i_CS{p}{i}": 0 for p in "AB" for i in range(3)}
            ports |= {"i_CLKA": ClockSignal("sync"), "i_CEA": write, "i_WEA": write,
                      "i_OCEA": self.rd_en if wide else 0, "i_RSTA": 0,
                      "i_CLKB": ClockSignal("sync"), "i_CEB": self.rd_en, "i_WEB": 0, "i_OCEB": self.rd_en,
                      "i_RSTB": 0}
            params = {"p_DATA_WIDTH_A": width, "p_DATA_WIDTH_B": width, "p_REGMODE_A": "OUTREG" if wide else "NOREG",
                      "p_REGMODE_B": "OUTREG", "p_RESETMODE": "SYNC", "p_ASYNC_RESET_RELEASE": "SYNC",
                      "p_CSDECODE_A": "0b000", "p_CSDECODE_B": "0b000", "p_WRITEMODE_A": "NORMAL",
                      "p_WRITEMODE_B": "NORMAL", "p_GSR": "DISABLED"}
            if any(contents):
                params |= dp16kd_initvals([(w >> (k * width)) & ((1 << width) - 1) for w in contents], width)
            name = f"{RAM_BANK}{b}_dp16kd{k}" if self.writable else f"rom_bank{b}_dp16kd{k}"
            m.submodules[name] = Instance("DP16KD", **params, **ports)
            words.append(data_out[:min(width, self.shape.width - k * width)])
        return Cat(*words)


def part_layout(depth: int, lanes: int) -> data.StructLayout:
    """The word addresses of an InterleavedMemory's parts (`part0` holds addresses 0, lanes, 2 * lanes, ...) and
    which part holds the first value read."""
    word = unsigned(max(-(-depth // lanes) - 1, 1).bit_length())
    return data.StructLayout({**{f"part{b}": word for b in range(lanes)}, "lane": max((lanes - 1).bit_length(), 1)})


class InterleavedMemory(wiring.Component):
    """A writable memory kept as `lanes` BankedMemory parts, address a in part a % lanes (at word a // lanes).

    Why: the arena had one write port, so every unit that writes one value
    per cycle was bound by it (residual Adds, short-K convolutions). Values at
    neighbouring addresses always land in different parts, so a unit can
    write up to `lanes` of them per cycle (`lane_write`), and one read gives a
    pair (`rd_data` at the address, `rd_next` after it) at the cost of one
    more multiplexer behind the banks. Callers address each part
    (`single_read`, `pair_read`): the walker's addresses meet no extra adder.

    `lanes` 1 builds one BankedMemory (no pairs: `rd_next` is 0); 2 (even and
    odd halves) is the arena's default; 4 lets the row writer of an unrolled
    depthwise conv write four pixels a cycle (HardwarePlan.write_lanes).
    """

    def __init__(self, shape, depth: int, lanes: int = 2, bank_depth: int | None = None,
                 write_stage: bool | None = None, latency: int = READ_LATENCY, single_port: bool = False):
        if lanes not in (1, 2, 4) or (single_port and lanes != 1):
            raise ValueError(f"an interleaved memory has 1, 2 or 4 lanes (1 single-ported), not {lanes}")
        self.shape, self.depth, self.lanes, self.latency = Shape.cast(shape), depth, lanes, latency
        self.shift = (lanes - 1).bit_length()  # log2(lanes)
        self.parts = [BankedMemory(shape, size, bank_depth=bank_depth, write_stage=write_stage, latency=latency,
                                   single_port=single_port)
                      for size in part_depths(depth, lanes)]
        rd = part_layout(depth, lanes)
        wr = data.StructLayout({"addr": rd["part0"].shape, "data": self.shape, "en": 1})
        more = {"rd_more": Out(data.ArrayLayout(self.shape, lanes - 2))} if lanes > 2 else {}  # at addr + 2, + 3
        super().__init__({"rd": In(rd), "rd_en": In(1), "rd_data": Out(self.shape), "rd_next": Out(self.shape),
                          **more, "wr": In(data.ArrayLayout(wr, max(lanes, 2)))})

    def single_read(self, addr) -> dict:
        """Part addresses that read `addr` alone: every part at addr // lanes (no adder in front of the memory)."""
        if self.lanes == 1:
            return {"part0": addr, "lane": 0}
        word = addr >> self.shift
        return {**{f"part{b}": word for b in range(self.lanes)}, "lane": addr[:self.shift]}

    def pair_read(self, addr, after) -> dict:
        """Part addresses that read `addr` and `after` (== addr + 1, worked out by the caller beside `addr`, so
        the two adders run in parallel): part 0 at after // lanes (the word after addr's where addr is in the last
        part, else the same), every other part at addr // lanes."""
        if self.lanes == 1:
            return self.single_read(addr)
        return {**self.single_read(addr), "part0": after >> self.shift}

    def lanes_read(self, addr, afters: list) -> dict:
        """Part addresses that read `lanes` values from `addr` on (`afters[k]` == addr + k + 1, worked out by the
        caller beside `addr`): part b holds the one of them congruent to b, word (addr + lanes - 1 - b) // lanes,
        so part b < lanes - 1 reads at afters[lanes - 2 - b] // lanes and the last part at addr // lanes. Two
        lanes: `pair_read`. The values come out as rd_data, rd_next, then rd_more."""
        if self.lanes <= 2:
            return self.pair_read(addr, afters[0]) if self.lanes == 2 else self.single_read(addr)
        return {**self.single_read(addr),
                **{f"part{b}": afters[self.lanes - 2 - b] >> self.shift for b in range(self.lanes - 1)}}

    def lane_write(self, wr, addr, values: list) -> list:
        """Statements that route a write of values[i] at `addr + i` ((data, en) each, at most `lanes`) to this
        memory's part ports `wr` (a signal of its `wr` layout): part b takes value (b - addr) % lanes, at word
        addr // lanes, or the one after where b < addr % lanes."""
        if self.lanes == 1:
            (d0, e0) = values[0]
            return [wr[0].addr.eq(addr), wr[0].data.eq(d0), wr[0].en.eq(e0), wr[1].eq(0)]
        lo, word = addr[:self.shift], addr >> self.shift
        values = list(values) + [(0, 0)] * (self.lanes - len(values))
        out = []
        for b in range(self.lanes):
            data_b, en_b = Signal(self.shape, name=f"lane_write{b}_data"), Signal(name=f"lane_write{b}_en")
            out.append(wr[b].addr.eq(word + (lo > b) if b < self.lanes - 1 else word))
            if self.lanes == 2:  # the even half takes the first value where addr is even (the Muxes the two-lane
                # arena has always had: its netlist, whose Fmax the synthesis tests' floors measure, stays as it was)
                out += [data_b.eq(Mux(lo, values[1 - b][0], values[b][0])),
                        en_b.eq(Mux(lo, values[1 - b][1], values[b][1]))]
            else:
                cases = [values[(b - k) % self.lanes] for k in range(self.lanes)]  # by addr % lanes
                out += [data_b.eq(Array(v for v, _ in cases)[lo]), en_b.eq(Array(Value.cast(e) for _, e in cases)[lo])]
            out += [wr[b].data.eq(data_b), wr[b].en.eq(en_b)]
        return out

    def elaborate(self, platform):
        m = Module()
        if self.lanes == 1:
            m.submodules.whole = whole = self.parts[0]
            m.d.comb += [whole.rd_addr.eq(self.rd.part0), whole.rd_en.eq(self.rd_en), self.rd_data.eq(whole.rd_data),
                         self.rd_next.eq(0), whole.wr_addr.eq(self.wr[0].addr), whole.wr_data.eq(self.wr[0].data),
                         whole.wr_en.eq(self.wr[0].en)]
            return m
        names = ("even", "odd") if self.lanes == 2 else tuple(f"part{b}" for b in range(self.lanes))
        lane = [Signal(self.shift, name=f"lane{i}", reset_less=True) for i in range(self.latency)]  # beside the reads
        with m.If(self.rd_en):
            m.d.sync += [lane[0].eq(self.rd.lane)] + [lane[i].eq(lane[i - 1]) for i in range(1, self.latency)]
        for b, (part, name) in enumerate(zip(self.parts, names)):
            m.submodules[name] = part
            wr = self.wr[b]
            m.d.comb += [part.rd_addr.eq(self.rd[f"part{b}"]), part.rd_en.eq(self.rd_en),
                         part.wr_addr.eq(wr.addr), part.wr_data.eq(wr.data), part.wr_en.eq(wr.en)]
        outs = [part.rd_data for part in self.parts]
        if self.lanes == 2:  # the two-lane arena's Muxes as they were
            m.d.comb += [self.rd_data.eq(Mux(lane[-1], outs[1], outs[0])),
                         self.rd_next.eq(Mux(lane[-1], outs[0], outs[1]))]
        else:
            m.d.comb += [self.rd_data.eq(Array(outs)[lane[-1]]),
                         self.rd_next.eq(Array(outs[1:] + outs[:1])[lane[-1]])]
            for k in range(self.lanes - 2):  # the values at addr + 2 + k, for `lanes_read`
                m.d.comb += self.rd_more[k].eq(Array(outs[2 + k:] + outs[:2 + k])[lane[-1]])
        return m
