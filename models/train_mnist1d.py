"""A Conv1d network trained on MNIST-1D (Greydanus 2020), a real 1-d signal data set generated offline.

The `mnist1d` package's generator (make_dataset, seed 42: 4000 training and
1000 test signals of length 40, ten classes) needs no download. Writes
models/mnist1d_cnn.pt2 (torch.export, input (1, 40)) and records the float
test accuracy in models/accuracy.json; `mnist1d_npz` writes the split hwgen
calibrates and evaluates on (`--calib`).

Run: python models/train_mnist1d.py   (about a minute on 2 cores)
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training import accuracy, fit  # models/ is on sys.path when a script here runs

HERE = Path(__file__).resolve().parent
MODEL_PATH = HERE / "mnist1d_cnn.pt2"
SIGNAL_LENGTH = 40


def mnist1d_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(x of shape (N, 1, 40) float32, y int64) of the generator's train or test split."""
    from mnist1d.data import get_dataset_args, make_dataset

    d = make_dataset(get_dataset_args())
    x, y = (d["x"], d["y"]) if split == "train" else (d["x_test"], d["y_test"])
    return x[:, None, :].astype(np.float32), y.astype(np.int64)


def mnist1d_npz(path: str | Path, split: str = "test") -> Path:
    """The split as an .npz with x and y, for `hwgen eval/build --calib`."""
    x, y = mnist1d_split(split)
    np.savez(path, x=x, y=y)
    return Path(path)


class Mnist1dCNN(nn.Module):
    def __init__(self, width: int = 32):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv1d(1, width, 5, padding=2), nn.BatchNorm1d(width), nn.ReLU(),
            nn.Conv1d(width, width, 3, stride=2, padding=1), nn.BatchNorm1d(width), nn.ReLU(),
            nn.Conv1d(width, width, 3, stride=2, padding=1), nn.BatchNorm1d(width), nn.ReLU(),
            nn.MaxPool1d(2), nn.Flatten())
        self.fc = nn.Linear(width * SIGNAL_LENGTH // 8, 10)

    def forward(self, x):
        return self.fc(self.features(x))


def train(model: nn.Module, epochs: int = 40, seed: int = 0) -> float:
    (x, y), (xt, yt) = mnist1d_split("train"), mnist1d_split("test")
    fit(model, x, y, epochs, seed)
    return accuracy(model, xt, yt)


def main() -> None:
    torch.set_num_threads(2)
    model = Mnist1dCNN()
    acc = train(model)
    torch.export.save(torch.export.export(model.eval(), (torch.zeros(1, 1, SIGNAL_LENGTH),)), str(MODEL_PATH))
    results = json.loads((HERE / "accuracy.json").read_text())
    results["mnist1d_cnn"] = {"float_test_accuracy": acc}
    (HERE / "accuracy.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"mnist1d_cnn: float test accuracy {acc:.4f} -> {MODEL_PATH.name}")


if __name__ == "__main__":
    main()
