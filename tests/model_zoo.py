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


class Branches(nn.Module):
    """Two convs of one input, concatenated on channels (an Inception-style block)."""

    def __init__(self, ch: int, a: int, b: int, act: nn.Module):
        super().__init__()
        self.a, self.b, self.act = nn.Conv2d(ch, a, 1), nn.Conv2d(ch, b, 3, padding=1), act

    def forward(self, x):
        return self.act(torch.cat([self.a(x), self.b(x)], 1))


ACTIVATIONS = (
    (0.45, nn.ReLU), (0.15, nn.ReLU6), (0.1, lambda: nn.LeakyReLU(0.125)), (0.1, lambda: nn.Hardtanh(-1.0, 2.0)),
    (0.05, nn.Sigmoid), (0.05, nn.Tanh), (0.05, nn.Hardswish), (0.05, nn.SiLU),
)


def random_model(seed: int) -> tuple[nn.Module, tuple[int, int, int]]:
    """A random mix: convs (strided, padded, grouped, depthwise), BN, activations (ReLU, ReLU6, LeakyReLU,
    Hardtanh, table ones), pools, residual adds, concatenated branches, nearest upsampling, a linear head."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    c, h = int(rng.integers(1, 4)), int(rng.integers(6, 11))
    shape = (c, h, h)
    layers: list[nn.Module] = []

    def act() -> nn.Module:
        return ACTIVATIONS[rng.choice(len(ACTIVATIONS), p=[p for p, _ in ACTIVATIONS])][1]()

    for _ in range(int(rng.integers(1, 4))):
        kind = rng.choice(["conv", "dw", "res", "maxpool", "avgpool", "cat", "up"],
                          p=[0.3, 0.1, 0.15, 0.12, 0.12, 0.12, 0.09])
        if kind == "cat":
            a, b = int(rng.integers(1, 5)), int(rng.integers(1, 5))
            layers.append(Branches(c, a, b, act()))
            c = a + b
        elif kind == "up" and h <= 8:
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            h *= 2
        elif kind in ("maxpool", "avgpool") and h >= 4:
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
            k = int(rng.choice([1, 3])) if h >= 3 else 1
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


class NewOpsNet(nn.Module):
    """Every op of the registry's second wave: LeakyReLU (exact and rounded slopes), Hardtanh, the five table
    activations, torch.cat on channels, nearest Upsample 2x, zero padding and a bias-free conv."""

    def __init__(self, in_ch: int = 1, slope: float = 0.1):
        super().__init__()
        self.slope = slope
        self.stem = nn.Conv2d(in_ch, 4, 3, padding=1)
        self.branch_a = nn.Conv2d(4, 3, 1, bias=False)
        self.branch_b = nn.Conv2d(4, 2, 3, padding=1)
        self.down = nn.Conv2d(5, 6, 3, stride=2, padding=1)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.mix = nn.Conv2d(11, 6, 1)
        self.pad = nn.ZeroPad2d(1)
        self.head = nn.Conv2d(6, 4, 3, stride=2)
        self.fc = nn.Linear(4 * 6 * 6, 5)
        self.acts = nn.ModuleList([nn.Sigmoid(), nn.Tanh(), nn.Hardsigmoid(), nn.Hardswish(), nn.SiLU()])

    def forward(self, x):
        x = nn.functional.leaky_relu(self.stem(x), 0.125)
        a = torch.tanh(self.branch_a(x))
        b = nn.functional.hardtanh(self.branch_b(x), -0.5, 1.5)
        cat = torch.cat([a, b], 1)                                        # 5 channels
        y = self.up(nn.functional.leaky_relu(self.down(cat), self.slope))  # 0.1: rounded to 2**-3, warned
        y = self.mix(torch.cat([cat, y], 1))
        for act in self.acts[2:]:
            y = act(y)
        y = self.acts[0](self.head(self.pad(y)))
        return self.fc(y.flatten(1))


def wide_input_net() -> tuple[nn.Module, tuple[int, int, int]]:
    """A large feature map and few weights: its activation arena (a 6x40x40 tensor beside the 40x40 input)
    outgrows the iCE40 UP5K's block RAM, and its layers form a chain, so a banked arena in SPRAM holds it."""
    torch.manual_seed(11)
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 5)).eval()
    _randomize_bn(model, np.random.default_rng(11))
    return model, (1, 40, 40)
