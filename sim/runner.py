"""Build Amaranth designs to Verilog and run cocotb testbenches on Verilator, from plain Python."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog

from hwgen.errors import HwgenError
from hwgen.toolchain import setup_verilator

SIM_DIR = Path(__file__).resolve().parent
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL"]


@dataclass(frozen=True)
class SimResult:
    tests: int
    failures: int
    results_xml: Path
    report: dict  # what the testbench wrote to its report file


def emit_verilog(component, name: str, ports=None) -> str:
    return verilog.convert(component, name=name, ports=ports, emit_src=False)


def build(verilog_text: str, toplevel: str, build_root: Path) -> Path:
    """Compile with Verilator once per distinct Verilog text (the directory is named by its digest)."""
    from cocotb_tools.runner import get_runner

    setup_verilator()
    digest = hashlib.sha256(verilog_text.encode()).hexdigest()[:16]
    build_dir = Path(build_root).resolve() / f"{toplevel}_{digest}"
    build_dir.mkdir(parents=True, exist_ok=True)
    src = build_dir / f"{toplevel}.v"
    if not src.exists() or src.read_text() != verilog_text:
        src.write_text(verilog_text)
    runner = get_runner("verilator")
    try:
        runner.build(sources=[src], hdl_toplevel=toplevel, build_dir=build_dir, build_args=VERILATOR_ARGS,
                     always=False, log_file=build_dir / "build.log")
    except RuntimeError as exc:
        raise HwgenError(f"Verilator could not compile {toplevel} ({exc}); see {build_dir / 'build.log'}") from None
    return build_dir


def run(build_dir: Path, toplevel: str, test_module: str, job: dict, name: str = "run",
        extra_env: dict[str, str] | None = None) -> SimResult:
    """Run `sim/<test_module>.py` against a built design; `job` reaches it as a JSON file."""
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    setup_verilator()
    build_dir = Path(build_dir).resolve()
    job_file = build_dir / f"{name}.job.json"
    report_file = Path(build_dir) / f"{name}.report.json"
    job_file.write_text(json.dumps(job))
    if report_file.exists():
        report_file.unlink()
    runner = get_runner("verilator")
    results = Path(build_dir) / f"{name}.results.xml"
    env = {"HWGEN_JOB": str(job_file), "HWGEN_REPORT": str(report_file),
           "PYTHONPATH": os.pathsep.join([str(SIM_DIR.parent), os.environ.get("PYTHONPATH", "")]), **(extra_env or {})}
    try:  # cocotb's runner exits non-zero on a failing test; the results file still says which
        runner.test(test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog", build_dir=build_dir,
                    test_dir=SIM_DIR, extra_env=env, results_xml=str(results), log_file=Path(build_dir) / f"{name}.log")
    except SystemExit:
        pass
    if not results.exists():
        raise HwgenError(f"the simulation of {toplevel} ended abnormally (no results file); see {build_dir / f'{name}.log'}")
    tests, failures = get_results(results)
    report = json.loads(report_file.read_text()) if report_file.exists() else {}
    return SimResult(tests, failures, results, report)
