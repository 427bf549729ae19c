"""Real synthesis (yosys + nextpnr + icepack from YoWASP): small designs, a misfit, and --array auto."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

HWGEN = [sys.executable, "-m", "hwgen.cli"]


def hwgen(*args):
    return subprocess.run([*HWGEN, *map(str, args)], capture_output=True, text=True)


def export(model, shape, path):
    torch.export.save(torch.export.export(model.eval(), (torch.zeros(1, *shape),)), str(path))


def synth_small_design(tmp_path, array: str, board: str) -> dict:
    """A two-layer Linear model built at `array` and synthesized for `board`: the report as JSON."""
    torch.manual_seed(0)
    export(nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4)), (1, 4, 4), tmp_path / "m.pt2")
    assert hwgen("build", tmp_path / "m.pt2", "--array", array, "-o", tmp_path / "b", "--vectors", "2").returncode == 0
    proc = hwgen("synth", tmp_path / "b", "--board", board, "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.filterwarnings("ignore")
def test_small_design_gives_an_icebreaker_bitstream(tmp_path):
    r = synth_small_design(tmp_path, "1x2", "icebreaker")
    assert r["fits"] and r["board"] == "icebreaker"
    # measured 2466 LUTs with the writer's look-ahead flags (the iCE40 does not preload window origins), 2411
    # after 6e6af9c (the units' writes zero outside their layer; their OR instead of the kind multiplexer, ECP5's
    # form, took 2631), 2396 at 4d7c125 (the iCE40's own forms; 2451 at b3b9b97, whose iCE40
    # build had missed them), 2422 at 3c35dad, 2408 before (1780 before the overlapping host link, the activation
    # clamps and the pipeline registers; 2230 before the registered parameter word and address, memory read
    # addresses, window bounds and five-stage requantizer)
    assert r["luts_available"] == 5280 and 0 < r["luts"] <= 2500
    assert r["dsps"] == 2  # one SB_MAC16 per PE
    # measured 42.3 MHz at 2455 LUTs with one arena copy (no Add: 2026-12-07; seeds 1 and 2 give 44.6 and 43.4,
    # and the design before it 41.0 and 43.4 beside its default 45.1, so the floor sits below that spread),
    # 45.1 MHz with the writer's look-ahead flags, 44.9 MHz after 6e6af9c, 43.9 at 4d7c125, 44.6 at 3c35dad,
    # 44.9 before (38.9 with the UART's registered strobe, now ECP5's only; 23.5 before any pipeline registers,
    # 30.8 with the first three, 38.2 before the registered argmax and bank decision of the host link, 40.0 before
    # the registers that came with 2408 LUTs; nextpnr's default seed: repeatable):
    # a timing regression fails
    assert r["fmax_mhz"] >= 40.5
    assert r["latency_us"] == pytest.approx(r["cycles_per_inference"] / 12.0)  # the 12 MHz oscillator
    # 3 Mbaud (12 MHz / 4); 16 inputs and 4 logits packed at their widths, 5 framing bytes in the request and 7 in
    # the response (16-bit class and count)
    assert r["baud"] == 3_000_000 and r["link_us"] == pytest.approx((5 + 16 + 7 + 4) * 10 / 3)
    assert r["end_to_end_latency_us"] == pytest.approx(r["link_us"] + r["latency_us"])
    assert r["throughput_bound"] == "link" and r["throughput_per_s"] == pytest.approx(3e6 / 10 / (5 + 16))
    bitstream = tmp_path / "b" / "synth-icebreaker" / "hwgen_top.bin"
    assert r["bitstream"] == str(bitstream) and bitstream.stat().st_size > 100_000  # a full UP5K image
    assert not r["cached"]
    first_image = bitstream.read_bytes()
    # unchanged build: served from the content-addressed cache, same numbers and the same bitstream
    again = hwgen("synth", tmp_path / "b", "--board", "icebreaker", "--json")
    assert again.returncode == 0, again.stderr
    r2 = json.loads(again.stdout)
    assert r2["cached"] and r2["synth_key"] == r["synth_key"]
    assert {k: r2[k] for k in ("luts", "ffs", "dsps", "brams", "fmax_mhz", "fits")} == \
        {k: r[k] for k in ("luts", "ffs", "dsps", "brams", "fmax_mhz", "fits")}
    assert bitstream.read_bytes() == first_image


@pytest.mark.filterwarnings("ignore")  # an ECP5 place and route of 4 PEs (~25 s)
def test_small_design_on_ecp5_uses_the_registered_dsp(tmp_path):
    """On ECP5 every PE is one MULT18X18D with its input and output registers (yosys would bypass them), and
    every RAM bank a DP16KD with its output register."""
    r = synth_small_design(tmp_path, "2x2", "orangecrab-25f")
    assert r["fits"] and r["dsps"] == 4
    netlist = json.loads((tmp_path / "b" / "synth-orangecrab-25f" / "hwgen_top.json").read_text())
    dsps = [c["parameters"] for c in netlist["modules"]["hwgen_top"]["cells"].values() if c["type"] == "MULT18X18D"]
    assert len(dsps) == 4
    assert all(p["REG_INPUTA_CLK"] == p["REG_INPUTB_CLK"] == p["REG_OUTPUT_CLK"] == "CLK0" for p in dsps)
    # every arena bank (two replicas of two halves), the weight ROM (16-bit words: the 18-bit mode) and the host
    # link's two buffers is a DP16KD whose read port has its output register on
    rams = [c["parameters"] for c in netlist["modules"]["hwgen_top"]["cells"].values() if c["type"] == "DP16KD"]
    assert len(rams) == 7 and all(p["REGMODE_B"] == "OUTREG" and p["REGMODE_A"] == "NOREG" for p in rams)
    assert sum(int(p["DATA_WIDTH_B"], 2) == 18 for p in rams) == 1
    # measured 217.7 MHz (seeds 1-3: 212.2, 206.0, 209.6) with the walker's preloaded window origins and the
    # tile counter's look-ahead flags (185.6 with the origins alone: the row-tile compares of `left` were the
    # critical path), 198.1 MHz at 3c35dad (with a fabric register behind each DSP), 196.9 before (169.3 before the
    # registered parameter word, window bounds, five-stage requantizer, registered memory addresses and DP16KD
    # output registers; nextpnr's default seed: repeatable): a timing regression fails
    assert r["fmax_mhz"] >= 188.0


@pytest.mark.slow  # a place-and-route attempt of an oversized design (~30 s)
@pytest.mark.filterwarnings("ignore")
def test_design_too_big_fails_with_numbers(tmp_path):
    """16 PEs need 16 multipliers; the UP5K has 8 DSPs. (Block RAM misfits are refused earlier, by
    `hwgen build --board`: tests/test_hwplan.py.)"""
    torch.manual_seed(0)
    export(nn.Sequential(nn.Flatten(), nn.Linear(16, 8)), (1, 4, 4), tmp_path / "m.pt2")
    assert hwgen("build", tmp_path / "m.pt2", "--array", "4x4", "-o", tmp_path / "b", "--vectors", "1").returncode == 0
    proc = hwgen("synth", tmp_path / "b", "--board", "icebreaker")
    assert proc.returncode == 1
    assert "does not fit iCEBreaker" in proc.stderr and "16 of 8 DSPS" in proc.stderr and "--array" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "b" / "synth-icebreaker" / "hwgen_top.bin").exists()


@pytest.mark.slow  # synthesis of digits_cnn for the iCEBreaker (~5 minutes: the UP5K is nearly full)
def test_array_auto_fits_the_icebreaker(tmp_path, cnn_path):
    proc = hwgen("build", cnn_path, "--array", "auto", "--board", "icebreaker", "-o", tmp_path / "b", "--vectors", "1",
                 "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["array"] == "2x4"  # 8 PEs: the UP5K's 8 DSPs
    proc = hwgen("synth", tmp_path / "b", "--board", "icebreaker", "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["fits"] and r["dsps"] == 8 and r["meets_timing"]
    # measured 40.7 MHz at 4885 logic cells on 2026-12-07 (4375fb7: one-hot FIFO pointers with flag registers,
    # the walker's tile-end flag, loops counting down; 36.7 at 3ec5207), 35.1 MHz at 4866 logic cells on
    # 2026-12-06 (37.3 at 4910 before a refactor that left the logic the
    # same; 34.2 at 4940 at bb67dd8, 36.3 and 36.8 there with seeds 1 and 2: placement alone moves it by ~8%, so
    # the floor sits below that spread), 37.8 MHz at 4937 logic cells with the writer's look-ahead flags (with the walker's preloaded window
    # origins too it did not place: hwgen.fit.PRELOAD_ORIGINS), 38.1 MHz at 4898 logic cells at 4d7c125 (the iCE40's own forms), 40.0 at 5051 at 81a4435 (forms
    # meant for ECP5: the family check had missed the iCE40), 39.3 at 5016 at 3c35dad, 39.2 at 5015 before (31.5
    # earlier, 29.1-34.7 at the intermediate pipelining steps, 25.2 before them, 19.7 before any; the UP5K is
    # 93-95% full, so a small change moves it by a few MHz, and 5025 cells once did not place): a timing
    # regression fails
    assert r["fmax_mhz"] >= 37.0


@pytest.mark.slow  # digits_cnn's 7x4 design: four OrangeCrab place-and-route runs, two at a time (~4 minutes)
def test_digits_cnn_at_its_orangecrab_array_reaches_200_mhz_over_four_seeds(tmp_path, cnn_path):
    """digits_cnn at `--array auto` on the OrangeCrab-25F: every DSP in the array, and the issue's 200 MHz floor
    for the fastest of nextpnr seeds 0-3 (`--seed 0-3`: the bitstream hwgen keeps)."""
    proc = hwgen("build", cnn_path, "--array", "auto", "--board", "orangecrab-25f", "-o", tmp_path / "b",
                 "--vectors", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["array"] == "7x4"
    proc = hwgen("synth", tmp_path / "b", "--board", "orangecrab-25f", "--seed", "0-3", "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["fits"] and r["dsps"] == 28 and r["meets_timing"]
    assert set(r["seeds_tried"]) == {"0", "1", "2", "3"} and r["fmax_mhz"] == max(r["seeds_tried"].values())
    # measured 2026-12-07: seeds 0-3 199.8, 201.5, 202.4, 207.8 MHz (4-5: 202.4, 188.3; nextpnr's default seed
    # 202.2) at 6617 LUTs, with the walker's tile-end flag, flag-register FIFOs and counted-down loop ends (seeds
    # 0-5 194.1-210.3 and the default 194.3 before; 164.2-196.7 and 181.2 before the timing-weighted placer):
    # a timing regression fails
    assert r["fmax_mhz"] >= 200.0


@pytest.mark.slow  # digits_cnn at 4 bits, 96 PEs: a Verilator run and an OrangeCrab place and route (~5 minutes)
def test_narrow_digits_cnn_runs_pes_past_the_dsps_in_logic_cells_on_the_orangecrab(tmp_path, cnn_path):
    """At 4 bits `--array auto` gives digits_cnn on the OrangeCrab-25F (28 DSPs) 6x16: 68 PEs multiply in logic
    cells. Bit-exact in the ECP5 form; it places with all 28 DSPs and no more."""
    proc = hwgen("build", cnn_path, "--bits", "4", "--array", "auto", "--board", "orangecrab-25f", "-o",
                 tmp_path / "b", "--vectors", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["array"] == "6x16" and report["hardware"]["pes_in_logic"] == 68
    sim = hwgen("sim", tmp_path / "b", "--dsp", "ecp5", "--json")
    assert sim.returncode == 0, sim.stderr
    assert json.loads(sim.stdout)["bit_exact"]
    proc = hwgen("synth", tmp_path / "b", "--board", "orangecrab-25f", "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["fits"] and r["dsps"] == 28 and r["meets_timing"]
    # measured 169.2 MHz at 13319 LUTs on 2026-12-07 (critical path the MAC writer's tile counter, not a
    # multiplier in logic; the all-DSP 7x4 design: 181.2 / 183.2 MHz at 8 / 4 bits): a timing regression fails
    assert r["fmax_mhz"] >= 150.0


@pytest.mark.slow  # four place-and-route runs (~2 minutes)
@pytest.mark.filterwarnings("ignore")
def test_clock_max_and_the_synth_cache(tmp_path):
    """--clock max: the fastest PLL clock below the oscillator design's Fmax that meets timing. Also: another
    baud rate or placement seed is another design to the synthesis cache, while --clock max reuses the
    oscillator run."""
    torch.manual_seed(0)
    export(nn.Sequential(nn.Flatten(), nn.Linear(16, 4)), (1, 4, 4), tmp_path / "m.pt2")
    assert hwgen("build", tmp_path / "m.pt2", "--array", "1x1", "-o", tmp_path / "b", "--vectors", "1").returncode == 0
    at_oscillator = json.loads(hwgen("synth", tmp_path / "b", "--board", "icebreaker", "--json").stdout)
    other = json.loads(hwgen("synth", tmp_path / "b", "--board", "icebreaker", "--baud", "57600", "--json").stdout)
    assert not at_oscillator["cached"] and not other["cached"] and other["synth_key"] != at_oscillator["synth_key"]
    # --seed: nextpnr places with it, and it is another design to the cache
    seeded = json.loads(hwgen("synth", tmp_path / "b", "--board", "icebreaker", "--seed", "7", "--json").stdout)
    assert seeded["seed"] == 7 and not seeded["cached"] and seeded["synth_key"] != at_oscillator["synth_key"]
    assert "--seed 7" in (tmp_path / "b" / "synth-icebreaker" / "build_hwgen_top.sh").read_text()
    # several seeds: one place and route each (7 from the cache), the fastest kept in the output directory
    swept = json.loads(hwgen("synth", tmp_path / "b", "--board", "icebreaker", "--seed", "7-8", "--json").stdout)
    tried = swept["seeds_tried"]
    assert set(tried) == {"7", "8"} and tried["7"] == seeded["fmax_mhz"] and all(tried.values())
    assert swept["fmax_mhz"] == max(tried.values()) == tried[str(swept["seed"])]
    kept = (tmp_path / "b" / "synth-icebreaker" / "build_hwgen_top.sh").read_text()
    assert f"--seed {swept['seed']}" in kept and Path(swept["bitstream"]).exists()
    assert "Max frequency for clock" in Path(swept["log"]).read_text()  # nextpnr's log, from the cache if it hit
    assert sorted(p.name for p in (tmp_path / "b").glob("synth-*")) == ["synth-icebreaker"]  # no trial left
    proc = hwgen("synth", tmp_path / "b", "--board", "icebreaker", "--clock", "max", "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["pll"] is not None and r["meets_timing"] and r["fits"]
    # above the 12 MHz oscillator, at most 5% under the oscillator design's Fmax, and timing met at that clock
    assert 12.0 < r["clock_mhz"] <= 0.95 * at_oscillator["fmax_mhz"] + 1e-9 and r["fmax_mhz"] >= r["clock_mhz"]
    assert r["latency_us"] == pytest.approx(r["cycles_per_inference"] / r["clock_mhz"])  # at the generated clock
    assert Path(r["bitstream"]).exists()
    from rtl_templates.pll import ice40_pll
    assert ice40_pll(12, r["clock_mhz"]).params == r["pll"]


@pytest.mark.parametrize("seeds", ["3-1", "x", "1,,2", "-2"])
def test_malformed_seeds_are_refused_before_any_tool_runs(tmp_path, seeds):
    proc = hwgen("synth", tmp_path, "--board", "icebreaker", "--seed", seeds)
    assert proc.returncode == 2 and "--seed" in proc.stderr and repr(seeds) in proc.stderr


def test_pll_dividers_match_the_vendor_equations():
    from rtl_templates.pll import ecp5_pll, ice40_pll, pll_at_most
    c = ice40_pll(12, 24)  # icepll's answer for 12 -> 24 MHz
    assert c.params == {"DIVR": 0, "DIVF": 63, "DIVQ": 5, "FILTER_RANGE": 1} and c.f_out == 24.0
    assert ice40_pll(12, 18).params == {"DIVR": 0, "DIVF": 47, "DIVQ": 5, "FILTER_RANGE": 1}  # 12 MHz * 48 / 32
    # --clock max: the highest output not above the limit, where the nearest one is above it
    assert ice40_pll(12, 22.4).f_out == 22.5 and pll_at_most("ice40", 12, 22.4).f_out == 22.125
    e = ecp5_pll(25, 40)
    p = e.params
    assert e.f_out == pytest.approx(25 / p["CLKI_DIV"] * p["CLKFB_DIV"]) == pytest.approx(40)
    assert 400 <= e.f_out * p["CLKOP_DIV"] <= 800


def test_impossible_clock_and_unknown_board_are_refused(tmp_path, mlp_path):
    assert hwgen("build", mlp_path, "--array", "1x1", "-o", tmp_path / "b", "--vectors", "1").returncode == 0
    proc = hwgen("synth", tmp_path / "b", "--board", "icebreaker", "--clock", "5")
    assert proc.returncode == 1 and "PLL cannot make 5 MHz" in proc.stderr and "Traceback" not in proc.stderr
    proc = hwgen("synth", tmp_path / "b", "--board", "nosuchboard")
    assert proc.returncode == 1 and "unknown board" in proc.stderr


def test_uart_rate_is_the_fastest_the_clock_makes_and_a_wrong_one_is_refused():
    from hwgen.errors import HwgenError
    from rtl_templates.uart import best_baud, uart_divisor

    assert best_baud(12e6) == 3_000_000 and uart_divisor(12e6, 3_000_000) == 4        # iCEBreaker
    assert best_baud(25e6) == 1_500_000 and uart_divisor(25e6, 1_500_000) == 17       # ULX3S oscillator: 2% off
    assert best_baud(48e6) == 3_000_000                                                # OrangeCrab
    with pytest.raises(HwgenError, match="25 MHz clock cannot make 3000000 baud within 3%.*use --baud 1500000"):
        uart_divisor(25e6, 3_000_000)


def test_synthesis_marks_only_the_writable_banks_collisions_undefined(tmp_path):
    """The synthesis script's selection (by memory name) must find every activation bank and no ROM bank: a
    renamed bank would silently bring back yosys's address compare and bypass register per block RAM."""
    from amaranth import Module, unsigned
    from amaranth.back import rtlil
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from hwgen.synth import SCRIPT_AFTER_READ
    from hwgen.toolchain import setup_synthesis
    from rtl_templates.memories import BankedMemory

    class Both(wiring.Component):
        def __init__(self):
            super().__init__({"addr": In(6), "en": In(1), "ram": Out(8), "rom": Out(8)})

        def elaborate(self, platform):
            m = Module()
            m.submodules.ram = ram = BankedMemory(unsigned(8), 40, bank_depth=16)  # 3 banks
            m.submodules.rom = rom = BankedMemory(unsigned(8), 20, init=range(20), writable=False, bank_depth=16)
            m.d.comb += [ram.rd_addr.eq(self.addr), ram.rd_en.eq(self.en), ram.wr_addr.eq(self.addr),
                         ram.wr_data.eq(self.addr), ram.wr_en.eq(self.en), self.ram.eq(ram.rd_data),
                         rom.rd_addr.eq(self.addr), rom.rd_en.eq(self.en), self.rom.eq(rom.rd_data)]
            return m

    (tmp_path / "both.il").write_text(rtlil.convert(Both(), name="both"))
    script = "; ".join(["read_rtlil both.il", *SCRIPT_AFTER_READ.splitlines(),
                        "select -assert-count 3 */t:$memrd_v2 */r:COLLISION_X_MASK=1'1 %i",
                        "select -assert-count 5 */t:$memrd_v2"])
    proc = subprocess.run([setup_synthesis()["YOSYS"], "-q", "-p", script], cwd=tmp_path, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("width, depth", [(9, 2048), (18, 1024), (36, 512)])
def test_dp16kd_contents_are_laid_out_as_yosys_maps_them(tmp_path, width, depth):
    """hwgen instantiates DP16KD ROMs itself (with the output register yosys's mapping leaves off), so its
    INITVAL layout must be yosys's: a ROM of each mode with random words, mapped by synth_ecp5, against
    rtl_templates.memories.dp16kd_initvals."""
    import random

    from amaranth import Module, Signal
    from amaranth.back import rtlil
    from amaranth.lib.memory import Memory

    from hwgen.toolchain import setup_synthesis
    from rtl_templates.memories import dp16kd_initvals

    rng = random.Random(width)
    words = [rng.getrandbits(width) for _ in range(depth)]
    m = Module()
    m.submodules.mem = mem = Memory(shape=width, depth=depth, init=words)
    rd = mem.read_port()
    addr, en, data = Signal(range(depth)), Signal(), Signal(width)
    m.d.comb += [rd.addr.eq(addr), rd.en.eq(en), data.eq(rd.data)]
    (tmp_path / "rom.il").write_text(rtlil.convert(m, name="rom", ports=[addr, en, data]))
    proc = subprocess.run([setup_synthesis()["YOSYS"], "-q", "-p", "read_rtlil rom.il; synth_ecp5 -top rom; "
                           "write_json rom.json"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    cells = json.loads((tmp_path / "rom.json").read_text())["modules"]["rom"]["cells"].values()
    blocks = [cell["parameters"] for cell in cells if cell["type"] == "DP16KD"]
    assert len(blocks) == 1  # (yosys reads a 2048 x 9 ROM as 1024 x 18 and picks a half: the same contents)
    expected = {name[len("p_"):]: const.value for name, const in dp16kd_initvals(words, width).items()}
    assert {name: int(blocks[0][name], 2) for name in expected} == expected


def test_pes_past_the_boards_dsps_multiply_in_logic_cells(tmp_path):
    """A 2x3 array with three PEs in logic cells (HardwarePlan.lut_pes) maps to three MULT18X18D, not six:
    yosys must not turn the logic-cell form back into DSP blocks."""
    from amaranth import signed, unsigned
    from amaranth.back import rtlil

    from hwgen.synth import SCRIPT_AFTER_READ
    from hwgen.toolchain import setup_synthesis
    from rtl_templates.array import SystolicArray
    from rtl_templates.family import FamilyTarget

    array = SystolicArray(2, 3, signed(4), unsigned(4), 14, product_stages=3, lut_pes=3)
    (tmp_path / "a.il").write_text(rtlil.convert(array, name="a", platform=FamilyTarget("ecp5")))
    script = "; ".join(["read_rtlil a.il", *SCRIPT_AFTER_READ.splitlines(), "synth_ecp5 -top a",
                        "select -assert-count 3 t:MULT18X18D"])
    proc = subprocess.run([setup_synthesis()["YOSYS"], "-q", "-p", script], cwd=tmp_path, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_kept_copies_keep_their_own_flip_flops(tmp_path):
    """Registers made by kept_copy survive yosys's merge of identical flip-flops (the synthesis script marks them
    `keep`); two plain registers with the same next value still merge, as the copies would without the script."""
    from amaranth import Module, Signal
    from amaranth.back import rtlil

    from hwgen.synth import SCRIPT_AFTER_READ
    from hwgen.toolchain import setup_synthesis
    from rtl_templates.streams import kept_copy

    m = Module()
    a, b = Signal(), Signal()
    outs = [kept_copy(m, f"en{i}", a & b, 1) for i in range(2)]
    plain = [Signal(name=f"plain{i}") for i in range(2)]
    m.d.sync += [p.eq(a & b) for p in plain]
    (tmp_path / "k.il").write_text(rtlil.convert(m, name="k", ports=[a, b, *outs, *plain]))
    script = "; ".join(["read_rtlil k.il", *SCRIPT_AFTER_READ.splitlines(), "synth_ecp5 -top k",
                        "select -assert-count 3 t:TRELLIS_FF"])
    proc = subprocess.run([setup_synthesis()["YOSYS"], "-q", "-p", script], cwd=tmp_path, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.filterwarnings("ignore")
def test_latency_counts_only_a_fast_bit_exact_simulation(tmp_path, mlp_path):
    """`hwgen synth` reports latency from the cycles `hwgen sim` measured, but not from a `--stall` run (its cycles
    include the backpressure it injected): then the plan's estimate, as before any simulation."""
    from hwgen.build import Build, build
    from hwgen.hwplan import ArrayShape
    from hwgen.simulate import simulate
    from hwgen.synth import _cycles_per_inference

    b = build(mlp_path, tmp_path / "b", array=ArrayShape(2, 2), inputs=2)
    estimate = float(json.loads((b.path / "report.json").read_text())["estimated_cycles"])
    assert _cycles_per_inference(Build.open(b.path)) == estimate
    stalled = simulate(b.path, stall=0.5, seed=1, work_dir=tmp_path / "s1")
    assert stalled.bit_exact and stalled.cycles_per_inference > estimate
    assert _cycles_per_inference(Build.open(b.path)) == estimate
    fast = simulate(b.path, work_dir=tmp_path / "s2")
    assert fast.bit_exact and _cycles_per_inference(Build.open(b.path)) == fast.cycles_per_inference
    assert fast.cycles_per_inference < stalled.cycles_per_inference


def test_an_arena_past_the_block_ram_places_in_the_icebreakers_sprams(tmp_path):
    """A 6x40x40 feature map beside its 40x40 input (the arena: 60 block RAMs of the UP5K's 30): the plan keeps
    it in the four SPRAMs (two banks, two copies at 2x2), yosys maps it to them (not to block RAM or logic), and
    the design places."""
    from model_zoo import wide_input_net

    model, shape = wide_input_net()
    export(model, shape, tmp_path / "m.pt2")
    proc = hwgen("build", tmp_path / "m.pt2", "--array", "2x2", "--board", "icebreaker", "-o", tmp_path / "b",
                 "--vectors", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((tmp_path / "b" / "report.json").read_text())["hardware"]["arena_in_spram"]
    proc = hwgen("synth", tmp_path / "b", "--board", "icebreaker", "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["fits"] and r["sprams"] == 4 and r["brams"] <= 12
    # measured 40.4 MHz at 4266 logic cells (2x2, 2026-12-07; 40.2 at 4840 with the pool's 16-bit reciprocal,
    # multiplier s17); the UP5K's placement moves it by ~8%
    assert r["fmax_mhz"] >= 35.0


@pytest.mark.slow  # DS-CNN: a Verilator run of 3 inputs (~0.8M cycles each) and an iCEBreaker place and route
def test_ds_cnn_fits_the_icebreaker_with_its_arena_and_weights_in_spram(tmp_path, root):
    """DS-CNN (its average pool's reciprocal at the weights' width, so the multiplier stays s8): `--array auto`
    on the iCEBreaker gives 1x4 with the arena (one copy, two banks) and the weights
    (32-bit words, loaded at start) in the four SPRAMs; bit-exact on Verilator in the iCE40 form, and it places
    with the PLL at the highest clock below its Fmax. Latency bar (issue 10): under 50 ms."""
    proc = hwgen("build", root / "models" / "tiny" / "ds_cnn.pt2", "--array", "auto", "--board", "icebreaker",
                 "-o", tmp_path / "b", "--vectors", "3", "--json")
    assert proc.returncode == 0, proc.stderr
    hw = json.loads((tmp_path / "b" / "hwplan.json").read_text())
    assert (hw["rows"], hw["cols"], hw["arena_spram"], hw["weights_spram"], hw["w_bits"]) == (1, 4, True, True, 8)
    assert "weights 280608 (176128 in the plan; in SPRAM, loaded over the host link at start)" in (
        tmp_path / "b" / "report.md").read_text()
    proc = hwgen("sim", tmp_path / "b", "--dsp", "ice40", "--json")
    assert proc.returncode == 0, proc.stderr
    sim = json.loads(proc.stdout)
    assert sim["bit_exact"] and sim["inputs"] == 3
    proc = hwgen("synth", tmp_path / "b", "--board", "icebreaker", "--clock", "max", "--json")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["fits"] and r["sprams"] == 4 and r["dsps"] == 4 and r["meets_timing"]
    # measured 2026-12-07: 4955 logic cells, 17 block RAMs, Fmax 37.5 MHz, PLL 35.25 MHz, 793892 cycles, 22.5 ms
    assert r["fmax_mhz"] >= 33.0
    assert r["cycles_per_inference"] == sim["cycles_per_inference"] and r["latency_us"] < 50_000
