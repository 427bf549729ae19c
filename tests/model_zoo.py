"""Random small models from the supported layer list, for property tests of every stage."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Residual(nn.Module):
    def __init__(self, ch: int, act: nn.Module):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)
        self.bn = nn.BatchNorm2d(ch)
        self.act = act

    def forward(self, x):
        return self.act(self.bn(self.conv(x)) + x)


def _randomize_bn(m: nn.Module, rng: np.random.Generator) -> None:
    for bn in m.modules():
        if isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = bn.num_features
            bn.running_mean.copy_(torch.from_numpy(rng.normal(0, 0.3, n)))
            bn.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, n)))
            bn.weight.data.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, n)))
            bn.bias.data.copy_(torch.from_numpy(rng.normal(0, 0.2, n)))


def random_model(seed: int) -> tuple[nn.Module, tuple[int, int, int]]:
    """A random mix: convs (strided, padded, grouped, depthwise), BN, ReLU/ReLU6, pools, residual adds, linear head."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    c, h = int(rng.integers(1, 4)), int(rng.integers(6, 11))
    shape = (c, h, h)
    layers: list[nn.Module] = []
    act = lambda: nn.ReLU() if rng.random() < 0.7 else nn.ReLU6()  # noqa: E731
    for _ in range(int(rng.integers(1, 4))):
        kind = rng.choice(["conv", "dw", "res", "maxpool", "avgpool"], p=[0.35, 0.15, 0.2, 0.15, 0.15])
        if kind in ("maxpool", "avgpool") and h >= 4:
            k = int(rng.choice([2, 3]))
            s = int(rng.choice([1, 2]))
            layers.append(nn.MaxPool2d(k, s) if kind == "maxpool" else nn.AvgPool2d(k, s))
            h = (h - k) // s + 1
        elif kind == "res":
            layers.append(Residual(c, act()))
        elif kind == "dw" and c > 1:
            layers += [nn.Conv2d(c, c, 3, padding=1, groups=c), nn.BatchNorm2d(c), act()]
        else:
            out = int(rng.integers(2, 9))
            k = int(rng.choice([1, 3]))
            s = int(rng.choice([1, 2])) if h >= 5 else 1
            p = int(rng.integers(0, k // 2 + 1))
            g = int(rng.choice([g for g in (1, 2) if c % g == 0 and out % g == 0]))
            layers += [nn.Conv2d(c, out, k, stride=s, padding=p, groups=g, bias=bool(rng.random() < 0.5))]
            if rng.random() < 0.6:
                layers.append(nn.BatchNorm2d(out))
            if rng.random() < 0.8:
                layers.append(act())
            c, h = out, (h + 2 * p - k) // s + 1
    if rng.random() < 0.5:
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        feat = c
    else:
        layers.append(nn.Flatten())
        feat = c * h * h
    hidden = int(rng.integers(4, 17))
    if rng.random() < 0.5:
        layers += [nn.Linear(feat, hidden), nn.BatchNorm1d(hidden) if rng.random() < 0.3 else nn.Identity(), nn.ReLU()]
        feat = hidden
    layers.append(nn.Linear(feat, int(rng.integers(2, 11))))
    model = nn.Sequential(*layers).eval()
    _randomize_bn(model, rng)
    return model, shape


def save_random_model(seed: int, path) -> tuple[nn.Module, tuple[int, int, int]]:
    """Alternate the two front ends: traced TorchScript (even seeds), torch.export (odd)."""
    model, shape = random_model(seed)
    example = torch.zeros((1, *shape))
    if seed % 2 == 0:
        torch.jit.save(torch.jit.trace(model, example), str(path))
    else:
        torch.export.save(torch.export.export(model, (example,)), str(path))
    return model, shape
