"""The hardware plan's data: the array, the layer program entries, the tensor slots, and their JSON form."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..errors import HwgenError, PlanError
from ..fixed import Fixed, shift_bits

SCHEMA = "hwgen.hwplan"
SCHEMA_VERSION = 1
KINDS = ("input", "mac", "max", "eltwise", "output")
INPUT, MAC, MAX, ELTWISE, OUTPUT = range(len(KINDS))  # LayerOp.kind: which unit runs the entry


@dataclass(frozen=True)
class ArrayShape:
    rows: int
    cols: int

    @classmethod
    def parse(cls, text: str) -> "ArrayShape":
        try:
            r, c = (int(v) for v in text.lower().split("x"))
        except ValueError:
            raise HwgenError(f"array size must look like 4x4 (rows x cols), got {text!r}") from None
        if not (1 <= r <= 64 and 1 <= c <= 64):
            raise HwgenError(f"array size {text!r}: rows and cols must be in 1..64")
        return cls(r, c)

    def __str__(self) -> str:
        return f"{self.rows}x{self.cols}"


@dataclass(frozen=True)
class LayerOp:
    """One entry of the layer program the sequencer reads; every field is an integer in the descriptor ROM.

    Derived products (hw = h*w, k = cin_g*kh*kw, ...) are precomputed so the
    hardware walks addresses with adders and counters only.
    """

    kind: int
    trace_id: int               # index of the node in the graph (0 = input)
    n_out: int                  # values written (or streamed out) before the layer is done
    in_base: int = 0
    in2_base: int = 0
    out_base: int = 0
    # window walk (mac, max)
    h: int = 1
    w: int = 1
    hw: int = 1
    cin_g: int = 1
    kh: int = 1
    kw: int = 1
    k: int = 1
    sy: int = 1
    sx: int = 1
    py: int = 0
    px: int = 0
    ybase0: int = 0             # -py * w
    row_step: int = 0           # sy * w
    ow: int = 1
    m: int = 1                  # output pixels
    mtiles: int = 1             # ceil(m / rows): row tiles
    tiles_per_mt: int = 1       # groups * nt
    ohw: int = 1
    groups: int = 1
    group_in_step: int = 0      # cin_g * hw
    coutg: int = 1
    nt: int = 1                 # column tiles per group
    cols_last: int = 1          # valid columns in a group's last column tile
    nt_out_step: int = 0        # cols * ohw
    group_out_step: int = 0     # coutg * ohw
    pad_value: int = 0
    # a depthwise conv's output row spread over the columns (`unroll` > 1): array row r computes `unroll` neighbouring
    # output pixels of one channel, one per column, from a window `unroll` strides wider (kw and sx above are the
    # widened window and its stride, ow and m count the row segments); `tail` pixels in a row's last segment
    unroll: int = 1
    tail: int = 1
    # weights and per-tile parameters (mac)
    w_base: int = 0
    w_words: int = 1            # memory words per tile
    w_code: int = 0             # index into HardwarePlan.weight_widths
    w_per_word: int = 1
    w_sub_last: int = 0         # w_per_word - 1
    w_hold: int = 0             # 1: every k-step reads the tile's one weight word (average pools)
    p_base: int = 0
    # requantization (mac: bias and shift per column from the parameter memory; eltwise: shift here)
    neg_shift: int = 0          # LeakyReLU: negative sums shift this much more
    clamp_lo: int = 0           # activation bounds, lo - 1 / hi + 1 where the activation has none
    clamp_hi: int = 0
    lo: int = 0
    hi: int = 0
    sa: int = 0
    sb: int = 0
    has_b: int = 0
    shift: int = 0
    # element-wise unit: read walk (nearest upsample repeats each value `up` times in x and each row in y),
    # write offset (a concat input's place in the output), table lookup
    up: int = 1
    out_off: int = 0
    lut: int = 0
    lut_base: int = 0           # table memory address of input code 0
    lut_shift: int = 0          # input bits the table ignores
    pairs: int = 0              # 1: the arena's lanes (2 or 4) values per cycle (a plain walk, no table)

    @property
    def kind_name(self) -> str:
        return KINDS[self.kind]

    @property
    def unrolled(self) -> bool:
        return self.unroll > 1

    @property
    def kernel_x(self) -> tuple[int, int]:
        """(width, x stride) of the layer's own kernel: an unrolled layer's kw and sx are its widened window's."""
        stride = self.sx // self.unroll
        return self.kw - (self.unroll - 1) * stride, stride

    @property
    def macs(self) -> int:
        """Multiply-accumulates of a `mac` entry (an unrolled one's widened window is mostly zero weights)."""
        if self.unrolled:
            return self.ohw * self.groups * self.kh * self.kernel_x[0]
        return self.m * self.groups * self.coutg * self.k


@dataclass(frozen=True)
class TensorSlot:
    name: str
    base: int
    size: int
    shape: tuple[int, ...]
    fmt: Fixed


# the iCE40 UltraPlus's single-ported RAM (SB_SPRAM256KA): words and bits; a plan with `arena_spram` keeps its
# activation arena in banks of that depth (hwplan.allocation.banked)
SPRAM_WORDS = 16384
SPRAM_WIDTH = 16

# the banked memories' read latencies a plan may ask for (HardwarePlan.read_latency; rtl_templates.memories)
READ_LATENCIES = (3, 4, 5)


@dataclass(frozen=True)
class HardwarePlan:
    rows: int
    cols: int
    a_bits: int                  # multiplier activation operand width
    a_signed: bool
    w_bits: int                  # multiplier weight operand width (widest layer)
    acc_bits: int
    store_bits: int              # signed width of an activation memory word
    max_right: int
    max_left: int
    arena_depth: int
    weight_widths: tuple[int, ...]
    weight_words: tuple[int, ...]
    param_words: tuple[int, ...]
    lut_words: tuple[int, ...]    # lookup tables, one after the other, entries in their layer's output format
    program: tuple[LayerOp, ...]
    tensors: tuple[TensorSlot, ...]
    layer_names: tuple[str, ...]  # graph node names by trace id
    output_name: str              # the tensor slot the output stream reads
    macs: int
    # values the arena takes per cycle: 2 stores it as interleaved halves and pairs the writes (docs/accelerator.md);
    # 1 where logic cells are scarcer than cycles (the iCE40: hwgen.fit.write_lanes); 4 (four interleaved parts)
    # where an unrolled depthwise conv's row writer gains by them (hwgen.fit.plan_for); the other units pair
    write_lanes: int = 2
    # registers between a PE's operands and its product: 2, or 3 with a fabric register behind the DSP where the
    # route from the DSP to the accumulator limits the clock and flip-flops are plentiful (ECP5: hwgen.fit.plan_for)
    product_stages: int = 2
    # enabled cycles from a banked memory's read address to its data (the arena and the weights): 3, 4 with
    # a registered level in the bank multiplexer where block RAMs spread over a large die, 5 with a register
    # beside every bank before that level (ECP5: hwgen.fit.plan_for)
    read_latency: int = READ_LATENCIES[0]
    # the walker loads the next row tile's window origins while the current one runs (a setup cycle per row tile
    # instead of `rows`); False where logic cells are scarcer than cycles (the iCE40: hwgen.fit.PRELOAD_ORIGINS)
    preload_origins: bool = True
    # PEs whose multiplier is built from logic cells instead of a DSP block: the last ones in row-major order, where
    # the array has more PEs than the board has DSPs and the operands are narrow (hwgen.fit: LUT_MULTIPLIER_BITS)
    lut_pes: int = 0
    # the activation arena in single-ported SPRAM banks of SPRAM_WORDS (the iCE40 UltraPlus: block RAM left for the
    # weights), every layer's output in the bank its inputs are not in (hwgen.fit.plan_for, only where the
    # arena would not fit the block RAM)
    arena_spram: bool = False
    # the weight memory in SPRAM too (where the block RAM cannot hold it either): written from the accelerator's
    # `load` stream at start, since an SPRAM has no bitstream contents (`weight_image`; the host link's load frames)
    weights_spram: bool = False
    schema: str = field(default=SCHEMA)
    version: int = field(default=SCHEMA_VERSION)

    @property
    def pes(self) -> int:
        return self.rows * self.cols

    @property
    def unrolls(self) -> bool:
        """Whether a layer spreads output rows over the columns (the RTL builds the row writer only then)."""
        return any(op.unrolled for op in self.program)

    @property
    def replicas(self) -> int:
        """Copies of the activation memory: one read port per array row, and two where an entry reads two
        tensors at once (an Add's element-wise walk)."""
        return max(self.rows, 2 if any(op.kind == ELTWISE and op.has_b for op in self.program) else 1)

    @property
    def shift_bits(self) -> int:
        return shift_bits(self.max_right, self.max_left)

    @property
    def param_width(self) -> int:
        return self.cols * (self.acc_bits + self.shift_bits)

    @property
    def weight_word_width(self) -> int:
        return self.cols * self.w_bits

    @property
    def weight_bytes_per_word(self) -> int:
        return -(-self.weight_word_width // 8)

    def weight_image(self) -> bytes:
        """What a `weights_spram` accelerator loads: every weight word, little-endian in weight_bytes_per_word
        bytes, from address 0."""
        n = self.weight_bytes_per_word
        return b"".join(int(w).to_bytes(n, "little") for w in self.weight_words)

    def tensor(self, name: str) -> TensorSlot:
        for t in self.tensors:
            if t.name == name:
                return t
        raise HwgenError(f"hardware plan has no tensor {name!r}")

    @property
    def input(self) -> TensorSlot:
        """The tensors are listed in the order they are first written (allocation.allocate): the input first."""
        return self.tensors[0]

    @property
    def output(self) -> TensorSlot:
        return self.tensor(self.output_name)

    def memory_bits(self) -> dict[str, int]:
        from .encoding import descriptor_width

        return {"activations": self.arena_depth * self.store_bits * self.replicas,
                "activation_arena": self.arena_depth * self.store_bits,
                "weights": len(self.weight_words) * self.weight_word_width,
                "params": len(self.param_words) * self.param_width,
                "tables": len(self.lut_words) * self.store_bits,
                "program": len(self.program) * descriptor_width(self)}

    def to_json(self) -> dict:
        d = asdict(self)
        d["weight_words"] = [f"{w:x}" for w in self.weight_words]
        d["param_words"] = [f"{w:x}" for w in self.param_words]
        d["tensors"] = [{**asdict(t), "fmt": t.fmt.to_json()} for t in self.tensors]
        return d

    @classmethod
    def from_json(cls, obj: dict) -> "HardwarePlan":
        if obj.get("schema") != SCHEMA or obj.get("version") != SCHEMA_VERSION:
            raise PlanError(f"not a {SCHEMA} v{SCHEMA_VERSION} hardware plan")
        obj = dict(obj)
        obj["weight_words"] = tuple(int(w, 16) for w in obj["weight_words"])
        obj["param_words"] = tuple(int(w, 16) for w in obj["param_words"])
        obj["weight_widths"] = tuple(obj["weight_widths"])
        obj["lut_words"] = tuple(obj.get("lut_words", ()))
        obj["program"] = tuple(LayerOp(**op) for op in obj["program"])
        obj["tensors"] = tuple(TensorSlot(t["name"], t["base"], t["size"], tuple(t["shape"]), Fixed.from_json(t["fmt"]))
                               for t in obj["tensors"])
        obj["layer_names"] = tuple(obj["layer_names"])
        return cls(**obj)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json()) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "HardwarePlan":
        return cls.from_json(json.loads(Path(path).read_text()))
