"""Fixtures shared by tests/ and sim/."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def cnn_path() -> Path:
    return ROOT / "models" / "digits_cnn.pt"


@pytest.fixture(scope="session")
def mlp_path() -> Path:
    return ROOT / "models" / "digits_mlp.pt"
