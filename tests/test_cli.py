"""The CLI as users run it: subprocesses, exit codes, one-line errors."""
import json
import subprocess
import sys

import pytest
import torch


def hwgen(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "hwgen.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd)


def test_eval_json_acceptance(cnn_path):
    r = hwgen("eval", cnn_path, "--bits", "8", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert abs(rep["fixed_accuracy"] - rep["float_accuracy"]) <= 0.01
    assert rep["weight_bits_total"] == sum(row["weight_bits"] for row in rep["layers"]) > 0
    assert {row["name"] for row in rep["layers"]} >= {"conv1", "conv2", "fc"}


def test_quantize_writes_plan_and_eval_reads_it(tmp_path, mlp_path):
    r = hwgen("quantize", mlp_path, "--bits", "8", "--layer", "fc1=w4", "-o", tmp_path / "plan.json")
    assert r.returncode == 0, r.stderr
    plan = json.loads((tmp_path / "plan.json").read_text())
    fc1 = next(lp for lp in plan["layers"] if lp["name"] == "fc1")
    assert plan["schema"] == "hwgen.plan" and fc1["weight"]["bits"] == 4 and fc1["acc_bits"] > 0
    r = hwgen("eval", mlp_path, "--plan", tmp_path / "plan.json")
    assert r.returncode == 0 and "fc1" in r.stdout and "s4." in r.stdout


@pytest.mark.parametrize("cmd", [[], ["quantize"], ["eval"]])
def test_help(cmd):
    r = hwgen(*cmd, "--help")
    assert r.returncode == 0 and "Usage:" in r.stdout


def _one_line_error(r, text):
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("hwgen: error:")]
    assert len(lines) == 1 and text in lines[0], r.stderr


def test_errors_are_one_line(tmp_path, cnn_path):
    torch.save(torch.nn.Linear(2, 2), tmp_path / "p.pt")
    _one_line_error(hwgen("eval", tmp_path / "p.pt"), "arbitrary pickle")
    (tmp_path / "t.pt").write_bytes(cnn_path.read_bytes()[:5000])
    _one_line_error(hwgen("eval", tmp_path / "t.pt"), "truncated or corrupt")

    class Odd(torch.nn.Module):
        def forward(self, x):
            return torch.sin(x)
    torch.export.save(torch.export.export(Odd(), (torch.zeros(1, 4),)), str(tmp_path / "o.pt2"))
    _one_line_error(hwgen("eval", tmp_path / "o.pt2"), "unsupported op 'sin'")
    plan = json.loads(hwgen("quantize", cnn_path, "-o", tmp_path / "plan.json").stdout and (tmp_path / "plan.json").read_text())
    plan["layers"][0]["weight"]["bits"] = 99
    (tmp_path / "bad.json").write_text(json.dumps(plan))
    _one_line_error(hwgen("eval", cnn_path, "--plan", tmp_path / "bad.json"), "field 'weight': bits must be an integer in 1..32, got 99")
    _one_line_error(hwgen("eval", cnn_path, "--bits", "40"), "must be in 2..32, got 40")


def test_cli_help_loads_neither_torch_nor_amaranth():
    """`hwgen --help` and the CLI module stay instant: the heavy packages load inside the commands."""
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", "import hwgen.cli"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    modules = {line.split("|")[-1].strip().split(".")[0] for line in r.stderr.splitlines() if "|" in line}
    assert "click" in modules and "hwgen" in modules  # the probe sees imports at all
    assert not modules & {"torch", "amaranth", "numpy", "cocotb"}, modules & {"torch", "amaranth", "numpy", "cocotb"}
    for command in ["", "build", "sim", "synth", "sweep", "eval"]:
        r = hwgen(*([command] if command else []), "--help")
        assert r.returncode == 0 and "Usage:" in r.stdout, (command, r.stderr)


def test_sim_dsp_choices_are_the_simulators_forms():
    """`hwgen sim --dsp` spells the forms out (the CLI imports no Amaranth); they must stay the simulator's,
    which hold every multiplier form but the logic-cell one (the plan's `lut_pes` puts it in any form)."""
    from hwgen.cli import main
    from hwgen.simulate import SIM_FORMS
    from rtl_templates.multiplier import PipelinedMultiplier

    option = next(p for p in main.commands["sim"].params if p.name == "dsp")
    assert tuple(option.type.choices) == SIM_FORMS and set(PipelinedMultiplier.FORMS) - {"lut"} <= set(SIM_FORMS)
