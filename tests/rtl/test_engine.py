"""Tile-engine regression on real Verilator through cocotb: every output integer vs the golden primitives."""
from __future__ import annotations

import re

import numpy as np
import pytest
from amaranth import signed, unsigned

from hwgen.verilog import emit_verilog
from sim import runner
from sim.engine_model import EngineConfig, random_config, random_problem, tile_cycles_model

ARRAYS = [(1, 1), (2, 3), (4, 4), (8, 8)]
CONFIGS_PER_ARRAY = 3
K_MAX = 40
# the default suite runs the first configuration of the two small arrays; the rest run with -m slow
ENGINE_CASES = [pytest.param(rows, cols, variant, marks=() if variant == 0 and rows * cols <= 6 else pytest.mark.slow)
                for rows, cols in ARRAYS for variant in range(CONFIGS_PER_ARRAY)]


@pytest.fixture(scope="session")
def sim_root(tmp_path_factory):
    return tmp_path_factory.mktemp("sim_build")


def _build(cfg: EngineConfig, root, ice40_form: bool = False):
    return runner.build(emit_verilog(cfg.build(ice40_form), "tile_engine"), "tile_engine", root)


@pytest.mark.parametrize("rows, cols, variant, ice40_form",
                         [pytest.param(*case.values, False, marks=case.marks) for case in ENGINE_CASES]
                         + [(2, 3, 0, True)])
def test_engine_bit_exact_random(sim_root, rows, cols, variant, ice40_form):
    """Random problems under random stalls; `ice40_form`: the iCE40's two-entry results FIFO, no operand
    register."""
    rng = np.random.default_rng(1000 * rows + 10 * cols + variant)
    cfg = random_config(rng, rows, cols, K_MAX)
    problems = [random_problem(rng, cfg, int(rng.integers(1, 2 * rows + 2)), int(rng.integers(1, K_MAX + 1)),
                               int(rng.integers(1, 2 * cols + 2))) for _ in range(12)]
    tiles = sum(-(-p.a.shape[0] // rows) * -(-p.w.shape[1] // cols) for p in problems)
    assert tiles >= 17  # 12 configs x >= 17 tiles >= 200 tiles in all
    shifts = np.concatenate([p.shift for p in problems])
    assert (shifts <= 0).any() and (shifts > 0).any()  # both rounding right shifts and left shifts
    res = runner.run(_build(cfg, sim_root, ice40_form), "tile_engine", "sim.tb_engine",
                     {"config": cfg.to_json(), "problems": [p.to_json() for p in problems], "seed": variant, "stall": 0.25},
                     name=f"random{variant}")
    assert res.tests == 1
    assert res.report["mismatches"] == [], f"{cfg}: {res.report['mismatches'][0]}"
    assert res.failures == 0
    assert sum(p["mismatches"] for p in res.report["problems"]) == 0
    assert len(res.report["problems"]) == len(problems)


def test_perturbed_expectation_is_caught(sim_root):
    rng = np.random.default_rng(7)
    cfg = random_config(rng, 2, 3, K_MAX)
    prob = random_problem(rng, cfg, 4, 9, 5)
    res = runner.run(_build(cfg, sim_root), "tile_engine", "sim.tb_engine",
                     {"config": cfg.to_json(), "problems": [prob.to_json(perturb=True)], "seed": 0}, name="perturbed")
    assert res.failures == 1
    bad = res.report["mismatches"][0]
    flat = (4 * 5) // 2
    assert (bad["row"], bad["col"]) == divmod(flat, 5) and bad["want"] == bad["got"] + 1


@pytest.mark.parametrize("rows, cols, m, k, n, ice40_form", [
    (2, 3, 5, 9, 7, False), (2, 3, 5, 9, 7, True),
    pytest.param(4, 4, 8, 3, 8, False, marks=pytest.mark.slow),
    pytest.param(4, 4, 9, 20, 5, False, marks=pytest.mark.slow),
    pytest.param(8, 8, 16, 40, 16, False, marks=pytest.mark.slow),
])
def test_cycle_model_matches_simulation(sim_root, rows, cols, m, k, n, ice40_form):
    """Both forms (three FIFO entries and the operand register, or the iCE40's two and none) keep a row per
    cycle, the operand register a cycle later."""
    rng = np.random.default_rng(m * k * n)
    cfg = EngineConfig(rows, cols, 8, 8, False, 8 + 8 + 8, 8, 24, 2)
    prob = random_problem(rng, cfg, m, k, n)
    res = runner.run(_build(cfg, sim_root, ice40_form), "tile_engine", "sim.tb_engine",
                     {"config": cfg.to_json(), "problems": [prob.to_json()], "seed": 0, "stall": 0.0}, name="cycles")
    assert res.failures == 0
    assert res.report["problems"][0]["cycles"] == tile_cycles_model(cfg, m, k, n, ice40_form)


def _module(verilog: str, name: str) -> str:
    start = verilog.index(f"module {name}")
    return verilog[start:verilog.index("endmodule", start)]


@pytest.mark.parametrize("w_bits, a_bits, a_signed, acc_bits", [(4, 8, False, 20), (8, 8, True, 24), (3, 16, True, 30)])
def test_multiplier_and_accumulator_widths_follow_the_plan(w_bits, a_bits, a_signed, acc_bits):
    cfg = EngineConfig(2, 2, w_bits, a_bits, a_signed, acc_bits, 8, 16, 2)
    v = emit_verilog(cfg.build(), "tile_engine")
    pe_name = re.search(r"^module (\S*pe_0_0) ?\(", v, re.M).group(1)
    pe = _module(v, pe_name)
    assert re.search(rf"output \[{w_bits - 1}:0\] w_out;", pe)
    assert re.search(rf"output \[{a_bits - 1}:0\] a_out;", pe)
    assert re.search(rf"output \[{acc_bits - 1}:0\] result;", pe)
    mul = _module(v, f"{pe_name}.multiplier")
    assert re.search(rf"input \[{w_bits - 1}:0\] w;", mul) and re.search(rf"input \[{a_bits - 1}:0\] a;", mul)
    mult = re.search(r"assign (\S+) += \$signed\(w_reg\) \* \$signed\((\{ 1'h0, a_reg \}|a_reg)\);", mul)
    assert mult, "the multiplier multiplies its two operand registers directly"
    assert (mult.group(2) == "a_reg") == a_signed  # unsigned activations get one zero bit, no more
    width = re.search(rf"wire \[(\d+):0\] {re.escape(mult.group(1))} ?;", mul)
    assert int(width.group(1)) + 1 == w_bits + a_bits  # |w * a| < 2**(w + a - 1): exact, no spare bit
    assert re.search(rf"reg \[{w_bits + a_bits - 1}:0\] product", mul)  # the product register, just as wide
    assert re.search(rf"reg \[{acc_bits - 1}:0\] acc", pe)


@pytest.mark.parametrize("w_shape, a_shape, dsp", [
    (signed(8), unsigned(8), True), (signed(18), signed(18), True), (signed(8), unsigned(17), True),
    (signed(8), unsigned(18), False), (signed(19), signed(8), False),
])
def test_ecp5_multiplier_uses_the_dsp_only_where_the_operands_fit(w_shape, a_shape, dsp):
    from rtl_templates.family import FamilyTarget
    from rtl_templates.multiplier import PipelinedMultiplier

    v = emit_verilog(PipelinedMultiplier(w_shape, a_shape), "mul", platform=FamilyTarget("ecp5"))
    assert ("MULT18X18D #(" in v) == dsp
    assert ("$signed(w_reg) * " in v) != dsp  # the portable form otherwise, with the same two stages
    in_logic = emit_verilog(PipelinedMultiplier(w_shape, a_shape, form="lut"), "mul", platform=FamilyTarget("ecp5"))
    assert "MULT18X18D" not in in_logic and " * " not in in_logic  # adders only: nothing yosys maps to a DSP


@pytest.mark.parametrize("w_bits, a_bits, a_signed", [(8, 8, False), (4, 17, False), (18, 18, True), (3, 5, True),
                                                     (4, 4, False), (2, 6, True)])
def test_multiplier_forms_agree_with_the_model_under_random_enables(sim_root, w_bits, a_bits, a_signed):
    """The ECP5 form (MULT18X18D with sim/models/MULT18X18D.v), the portable form and the logic-cell form
    (shifted partial products), side by side on Verilator: each equals LATENCY enabled register stages every
    cycle, with operands that change while the enable is low."""
    from amaranth import Module
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from rtl_templates.multiplier import LATENCY, PipelinedMultiplier, product_shape

    w_shape, a_shape = signed(w_bits), signed(a_bits) if a_signed else unsigned(a_bits)

    class SideBySide(wiring.Component):
        def __init__(self):
            super().__init__({"en": In(1), "w": In(w_shape), "a": In(a_shape),
                              **{f"product_{form}": Out(product_shape(w_shape, a_shape))
                                 for form in PipelinedMultiplier.FORMS}})

        def elaborate(self, platform):
            m = Module()
            for form in PipelinedMultiplier.FORMS:
                m.submodules[form] = mul = PipelinedMultiplier(w_shape, a_shape, form=form)
                m.d.comb += [mul.en.eq(self.en), mul.w.eq(self.w), mul.a.eq(self.a),
                             getattr(self, f"product_{form}").eq(mul.product)]
            return m

    sources = {"mul.v": emit_verilog(SideBySide(), "mul"), **runner.ecp5_models()}
    design = runner.build(sources, "mul", sim_root)
    job = {"seed": w_bits * a_bits, "w_bits": w_bits, "a_bits": a_bits, "a_signed": a_signed, "cycles": 400,
           "latency": LATENCY, "forms": list(PipelinedMultiplier.FORMS)}
    res = runner.run(design, "mul", "sim.tb_multiplier", job, name="multiplier")
    assert res.failures == 0
    assert res.report["checked"] >= 380 and res.report["mismatches"] == [], res.report["mismatches"]


@pytest.mark.parametrize("width, depth, bank_depth, writable, write_stage, latency", [
    (9, 11000, None, True, True, 4), pytest.param(16, 1500, None, True, False, 3, marks=pytest.mark.slow),
    pytest.param(20, 700, 1024, True, True, 3, marks=pytest.mark.slow),
    pytest.param(9, 3000, None, False, False, 3, marks=pytest.mark.slow), (20, 1500, 1024, False, False, 3),
    (40, 1100, 512, False, False, 4)])
def test_memory_forms_agree_with_a_list_under_random_enables(sim_root, width, depth, bank_depth, writable,
                                                             write_stage, latency):
    """The ECP5 form (DP16KD banks with their output register, sim/models/DP16KD.v) and the portable form,
    side by side on Verilator: both read a list through READ_LATENCY enabled stages, with random writes (a RAM)
    or random initial contents (a ROM: the INITVAL layout) and addresses that change while the enable is low.
    Widths 9 (2048-word banks, the 9-bit mode), 16 (1024-word banks, the 18-bit mode with its byte enables),
    20 (two blocks side by side per bank), 40 (a ROM of 512-word banks: the 36-bit mode beside a 9-bit one);
    RAMs with and without the write stage (a write lands a cycle later); latency 4 (ECP5's plans): the bank multiplexer's registered group level, 6 banks in two groups."""
    import random

    from amaranth import Module
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from rtl_templates.memories import WRITE_STAGE_LATENCY, BankedMemory
    from rtl_templates.family import FamilyTarget

    rng = random.Random(width * depth)
    init = [] if writable else [rng.getrandbits(width) for _ in range(depth)]
    write_ports = {"wr_en": In(1), "wr_addr": In(range(depth)), "wr_data": In(unsigned(width))} if writable else {}

    class SideBySide(wiring.Component):
        def __init__(self):
            super().__init__({"rd_en": In(1), "rd_addr": In(range(depth)), **write_ports,
                              "rd_data_generic": Out(unsigned(width)), "rd_data_ecp5": Out(unsigned(width))})

        def elaborate(self, platform):
            m = Module()
            for form in BankedMemory.FORMS:
                mem = BankedMemory(unsigned(width), depth, init=init, writable=writable, bank_depth=bank_depth,
                                   form=form, write_stage=write_stage, latency=latency)
                assert mem.registers_writes(platform) == (writable and write_stage)
                assert mem.uses_dp16kd(platform) == (form == "ecp5")
                m.submodules[form] = mem
                m.d.comb += [mem.rd_en.eq(self.rd_en), mem.rd_addr.eq(self.rd_addr),
                             getattr(self, f"rd_data_{form}").eq(mem.rd_data)]
                if writable:
                    m.d.comb += [mem.wr_en.eq(self.wr_en), mem.wr_addr.eq(self.wr_addr), mem.wr_data.eq(self.wr_data)]
            return m

    text = emit_verilog(SideBySide(), "mem", platform=FamilyTarget("ecp5"))
    bank_depth = bank_depth or (2048 if width <= 9 else 1024)
    assert text.count("DP16KD #(") == -(-depth // bank_depth) * -(-width // {2048: 9, 1024: 18, 512: 36}[bank_depth])
    design = runner.build({"mem.v": text, **runner.ecp5_models()}, "mem", sim_root)
    job = {"seed": width * depth, "depth": depth, "width": width, "cycles": 1500, "latency": latency,
           "writable": writable, "init": init, "write_latency": WRITE_STAGE_LATENCY if write_stage else 0}
    res = runner.run(design, "mem", "sim.tb_memory", job, name="memory")
    assert res.failures == 0
    assert res.report["checked"] >= 800 and res.report["mismatches"] == [], res.report["mismatches"]
