"""A larger convolutional reference model with seeded random weights, for synthetic-data experiments.

3x32x32 input; stem conv, strided conv, residual block, depthwise + pointwise
convs (all with BatchNorm), global average pool, linear head: 17232 weights.
It has no training data, so methods are compared by output SQNR against
float (bench/precision.py) rather than by accuracy.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

SHAPE = (3, 32, 32)


class SyntheticCNN(nn.Module):
    def __init__(self, width: int = 16):
        super().__init__()
        c = width
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU())
        self.down = nn.Sequential(nn.Conv2d(c, 2 * c, 3, stride=2, padding=1), nn.BatchNorm2d(2 * c), nn.ReLU())
        self.res = nn.Sequential(nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.BatchNorm2d(2 * c))
        self.dw = nn.Sequential(nn.Conv2d(2 * c, 2 * c, 3, padding=1, groups=2 * c), nn.BatchNorm2d(2 * c), nn.ReLU())
        self.pw = nn.Sequential(nn.Conv2d(2 * c, 4 * c, 1), nn.BatchNorm2d(4 * c), nn.ReLU())
        self.head = nn.Linear(4 * c, 10)

    def forward(self, x):
        x = self.down(self.stem(x))
        x = torch.relu(self.res(x) + x)
        x = self.pw(self.dw(x))
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def export(path: str | Path, seed: int = 0) -> Path:
    """Seeded weights and non-trivial BatchNorm statistics (as after training), saved with torch.export."""
    torch.manual_seed(seed)
    model = SyntheticCNN().eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    torch.export.save(torch.export.export(model, (torch.zeros(1, *SHAPE),)), str(path))
    return Path(path)
