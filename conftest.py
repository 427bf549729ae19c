"""Fixtures shared by tests/ and sim/."""
import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent


def pytest_configure(config):
    """One Verilator cache for the whole run (tests of the same design compile it once), fresh each run
    unless HWGEN_CACHE is set, so CI always proves the compile from scratch."""
    if "HWGEN_CACHE" not in os.environ:
        os.environ["HWGEN_CACHE"] = tempfile.mkdtemp(prefix="hwgen-test-cache-")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def cnn_path() -> Path:
    return ROOT / "models" / "digits_cnn.pt"


@pytest.fixture(scope="session")
def mlp_path() -> Path:
    return ROOT / "models" / "digits_mlp.pt"
