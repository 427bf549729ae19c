"""The codebase's shape: layers import only downward and test files are not installed (the light CLI: test_cli.py)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

INSTALLED_PACKAGES = ("hwgen", "rtl_templates", "sim", "boards")


def test_import_contracts_hold(root):
    """import-linter's contracts in pyproject.toml: the pipeline layers, planning free of hardware code."""
    lint = Path(sys.executable).with_name("lint-imports")
    r = subprocess.run([str(lint), "--config", str(root / "pyproject.toml")], cwd=root, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout and "3 kept" in r.stdout, r.stdout[-2000:]


def test_installed_packages_hold_no_test_files(root):
    for package in INSTALLED_PACKAGES:
        tests = sorted(p.relative_to(root) for p in (root / package).rglob("test_*.py"))
        assert not tests, f"pytest files inside the installed package {package}: {tests}"
