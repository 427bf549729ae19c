"""Build Amaranth designs to Verilog and run cocotb testbenches on Verilator, from plain Python.

Compiled models live in a cache keyed by a digest of everything that goes into
the compile (Verilog text, flags, Verilator and cocotb versions), so a second
`hwgen sim` of the same build, or another test of the same design, runs at
once. The cache is shared between processes: one compiles under a file lock,
the others wait and reuse it. Runs write their files into their own run
directory, never into the cache.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from hwgen.errors import HwgenError
from hwgen.toolchain import setup_verilator

SIM_DIR = Path(__file__).resolve().parent
VERILATOR_ARGS = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL",
                  "--x-assign", "fast", "--x-initial", "fast", "-O3"]
# C++ optimisation of the generated model: the per-cycle code at -O2, the run-once (constructor,
# initial blocks) code at -O0, which keeps the compile short.
MAKE_OPT = {"OPT_FAST": "-O2", "OPT_SLOW": "-O0", "OPT_GLOBAL": "-O1"}
STAMP = "compiled.json"


@dataclass(frozen=True)
class SimResult:
    tests: int
    failures: int
    results_xml: Path
    report: dict  # what the testbench wrote to its report file


@dataclass(frozen=True)
class CompiledDesign:
    path: Path
    toplevel: str
    compile_seconds: float  # 0 when it came from the cache
    cached: bool


def cache_root() -> Path:
    """`verilator/` in hwgen's cache ($HWGEN_CACHE, else ~/.cache/hwgen)."""
    from hwgen.cache import default_root

    return default_root() / "verilator"


def ecp5_models() -> dict[str, str]:
    """Our behavioural models of the ECP5 cells hwgen instantiates (the PE's MULT18X18D, the RAM banks' DP16KD),
    as sources to compile beside a design."""
    paths = [SIM_DIR / "models" / name for name in ("MULT18X18D.v", "DP16KD.v")]
    return {path.name: path.read_text() for path in paths}


_INIT_BLOCK = re.compile(r"(  reg (\[\d+:0\] )?(\\?\S+) +\[(\d+):0\];\n)  initial begin\n((?:    \3 ?\[\d+\] = [^\n]*\n)+)  end\n")


def memories_to_files(verilog_text: str, out_dir: Path) -> str:
    """Replace inlined memory initialisers with `$readmemh` of a file (or a loop, for all-zero memories).

    Verilator turns every `mem[i] = value;` into C++; large weight ROMs and
    activation arenas then dominate the compile. The values are unchanged.
    """
    count = 0

    def replace(match: re.Match) -> str:
        nonlocal count
        decl, name, depth, body = match.group(1), match.group(3), int(match.group(4)), match.group(5)
        try:
            values = [_literal(line.split("=", 1)[1]) for line in body.splitlines()]
        except (ValueError, KeyError, IndexError):
            return match.group(0)
        if len(values) != depth + 1:
            return match.group(0)
        count += 1
        if not any(values):
            return decl + f"  initial begin : init_{count}\n    integer i;\n    for (i = 0; i <= {depth}; i = i + 1) {name} [i] = 0;\n  end\n"
        hex_file = out_dir / f"mem{count}.hex"
        hex_file.write_text("".join(f"{v:x}\n" for v in values))
        return decl + f'  initial $readmemh("{hex_file}", {name} );\n'

    return _INIT_BLOCK.sub(replace, verilog_text)


def _literal(text: str) -> int:
    """The value of a sized Verilog literal such as 9'h1f0 or 1'b1."""
    size, value = text.strip().rstrip(";").split("'", 1)
    base = {"h": 16, "b": 2, "d": 10}[value[0].lower()]
    return int(value[1:].replace("_", ""), base)


def _digest(sources: dict[str, str], toplevel: str, extra_args: list[str]) -> str:
    """The compiled model's key. It includes where cocotb's libraries are: the binary loads them from that path,
    so a model compiled by another (since deleted) environment must not be taken from the cache."""
    from cocotb_tools.config import libs_dir

    from hwgen.cache import digest, tool_versions

    return digest(sources, toplevel, VERILATOR_ARGS, extra_args, MAKE_OPT, tool_versions("verilator", "cocotb"),
                  str(libs_dir))[:20]


def build(verilog_text: str | dict[str, str], toplevel: str, cache: Path | None = None,
          extra_args: list[str] | None = None, public: tuple[str, ...] | None = None) -> CompiledDesign:
    """Compile with Verilator once per distinct design; `verilog_text` is one text or {file name: text}.

    By default cocotb can reach every signal (testbenches that look inside).
    `public=(names...)` opens only those signals of the top module: every
    signal cocotb may write is treated by Verilator as a possible input, and
    the logic behind it is evaluated again on every call, so a harness that
    exposes only its ports simulates several times faster.
    """
    from filelock import FileLock

    setup_verilator()
    sources = verilog_text if isinstance(verilog_text, dict) else {f"{toplevel}.v": verilog_text}
    extra_args = list(extra_args or [])
    digest = _digest(sources, toplevel, [*extra_args, f"public={public}"])
    root = Path(cache).resolve() if cache else cache_root()
    root.mkdir(parents=True, exist_ok=True)
    build_dir = root / f"{toplevel}_{digest}"
    with FileLock(str(build_dir) + ".lock"):
        if (build_dir / STAMP).exists():
            return CompiledDesign(build_dir, toplevel, 0.0, True)
        shutil.rmtree(build_dir, ignore_errors=True)
        build_dir.mkdir(parents=True)
        files = []
        for name, text in sources.items():
            f = build_dir / name
            f.write_text(memories_to_files(text, build_dir))
            files.append(f)
        t0 = time.monotonic()
        _compile(files, toplevel, build_dir, public, extra_args)
        seconds = time.monotonic() - t0
        (build_dir / STAMP).write_text(json.dumps({"toplevel": toplevel, "compile_seconds": seconds}) + "\n")
    return CompiledDesign(build_dir, toplevel, seconds, False)


def _compile(files: list[Path], toplevel: str, build_dir: Path, public: tuple[str, ...] | None,
             extra_args: list[str]) -> None:
    """Verilator + make, as cocotb's runner does it, but with the signal visibility and C++ flags chosen here."""
    import subprocess

    import cocotb_tools.config as cocotb_config

    if public is None:
        visibility = ["--public-flat-rw"]
    else:
        vlt = build_dir / "public.vlt"
        vlt.write_text("`verilator_config\n" + "".join(f'public_flat_rw -module "{toplevel}" -var "{name}"\n'
                                                        for name in public))
        visibility = [str(vlt)]
    libs = cocotb_config.libs_dir
    verilate = ["verilator", "-cc", "--exe", "-Mdir", str(build_dir), "--top-module", toplevel, "--vpi", "--prefix",
                "Vtop", "-o", toplevel, "-LDFLAGS", f"-Wl,-rpath,{libs} -L{libs} -lcocotbvpi_verilator",
                *VERILATOR_ARGS, *extra_args, *visibility,
                str(cocotb_config.share_dir / "lib" / "verilator" / "verilator.cpp"), *map(str, files)]
    make = ["make", "-j", str(max(os.cpu_count() or 1, 1)), "-C", str(build_dir), "-f", "Vtop.mk",
            *(f"{k}={v}" for k, v in MAKE_OPT.items())]
    with open(build_dir / "build.log", "w") as log:
        for cmd in (verilate, make):
            log.write(" ".join(cmd) + "\n")
            log.flush()
            if subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=build_dir).returncode != 0:
                raise HwgenError(f"Verilator could not compile {toplevel}; see {build_dir / 'build.log'}")


def run(design: CompiledDesign | Path, toplevel: str, test_module: str, job: dict, name: str = "run",
        extra_env: dict[str, str] | None = None, run_dir: Path | None = None,
        plusargs: list[str] | None = None) -> SimResult:
    """Run `sim/<test_module>.py` against a compiled design; `job` reaches it as a JSON file in `run_dir`."""
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner

    setup_verilator()
    build_dir = design.path if isinstance(design, CompiledDesign) else Path(design).resolve()
    run_dir = Path(run_dir).resolve() if run_dir else build_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    job_file = run_dir / f"{name}.job.json"
    report_file = run_dir / f"{name}.report.json"
    job_file.write_text(json.dumps(job))
    report_file.unlink(missing_ok=True)
    runner = get_runner("verilator")
    results = run_dir / f"{name}.results.xml"
    results.unlink(missing_ok=True)
    env = {"HWGEN_JOB": str(job_file), "HWGEN_REPORT": str(report_file),
           "PYTHONPATH": os.pathsep.join([str(SIM_DIR.parent), os.environ.get("PYTHONPATH", "")]), **(extra_env or {})}
    try:  # cocotb's runner exits (or raises) on a failing test or an HDL $fatal; the results file says which
        runner.test(test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog", build_dir=build_dir,
                    test_dir=SIM_DIR, extra_env=env, results_xml=str(results), log_file=run_dir / f"{name}.log",
                    plusargs=list(plusargs or []))
    except (SystemExit, RuntimeError):
        pass
    if not results.exists():
        raise HwgenError(f"the simulation of {toplevel} ended abnormally (no results file); see {run_dir / f'{name}.log'}")
    tests, failures = get_results(results)
    report = json.loads(report_file.read_text()) if report_file.exists() else {}
    return SimResult(tests, failures, results, report)
