"""The bundled calibration/evaluation data: scikit-learn's digits set, offline.

Split without a random generator, so every numpy/sklearn version agrees:
every fifth sample (index % 5 == 0) is the test split, the rest train.
Images are (1, 8, 8) float32 in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import HwgenError

DIGITS_SHAPE = (1, 8, 8)


@dataclass(frozen=True)
class Dataset:
    x: np.ndarray
    y: np.ndarray | None  # None: no labels (synthetic or unlabelled calibration data)
    name: str


def digits(split: str) -> Dataset:
    from sklearn.datasets import load_digits

    raw = load_digits()
    x = (raw.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = raw.target.astype(np.int64)
    test = np.arange(len(y)) % 5 == 0
    if split == "test":
        return Dataset(x[test], y[test], "digits-test")
    if split == "train":
        return Dataset(x[~test], y[~test], "digits-train")
    raise ValueError(split)


def load_npz(path: str | Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f:
                raise HwgenError(f"{str(path)!r} has no array 'x'; save it with np.savez(path, x=inputs[, y=labels])")
            return Dataset(f["x"].astype(np.float32), f["y"].astype(np.int64) if "y" in f else None, str(path))
    except (OSError, ValueError) as exc:
        raise HwgenError(f"cannot read data file {str(path)!r}: {exc}") from exc


def synthetic(shape: tuple[int, ...], count: int = 256, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    return Dataset(rng.standard_normal((count, *shape)).astype(np.float32), None, f"synthetic-normal(seed={seed})")
