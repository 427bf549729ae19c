"""Train the two reference models on scikit-learn's digits and export TorchScript.

Run: python models/train_digits.py   (about a minute on 2 cores)
Deterministic: fixed seeds, the index-based split of hwgen.data.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from training import accuracy, fit  # models/ is on sys.path when a script here runs

from hwgen.data import DIGITS_SHAPE, digits
from hwgen.importer.loader import INPUT_SHAPE_FILE

HERE = Path(__file__).resolve().parent


class DigitsMLP(nn.Module):
    def __init__(self, hidden: int = 32):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(64, hidden)
        self.relu = nn.ReLU()
        self.fc2 = nn.Linear(hidden, 10)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(self.flatten(x))))


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(self.flatten(self.pool(x)))


def train(model: nn.Module, epochs: int, seed: int = 0) -> float:
    tr, te = digits("train"), digits("test")
    fit(model, tr.x, tr.y, epochs, seed)
    return accuracy(model, te.x, te.y)


def export(model: nn.Module, path: Path) -> None:
    scripted = torch.jit.script(model.eval())
    torch.jit.save(scripted, str(path), _extra_files={INPUT_SHAPE_FILE: json.dumps(list(DIGITS_SHAPE))})


def main() -> None:
    torch.set_num_threads(2)
    path = HERE / "accuracy.json"
    results = json.loads(path.read_text()) if path.exists() else {}  # other scripts record their models here too
    for name, model, epochs in (("digits_mlp", DigitsMLP(), 40), ("digits_cnn", DigitsCNN(), 30)):
        torch.manual_seed(0)
        model.apply(lambda m: m.reset_parameters() if hasattr(m, "reset_parameters") else None)
        acc = train(model, epochs)
        export(model, HERE / f"{name}.pt")
        results[name] = acc
        print(f"{name}: float test accuracy {acc:.4f}")
    path.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
