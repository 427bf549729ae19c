"""PyTorch ports of the four MLPerf Tiny reference architectures (seeded random weights).

The data sets are not reachable here, so the weights are seeded random and
the BatchNorm statistics are what the layers really see: each BN's running
mean and variance are measured on seeded synthetic inputs (layer by layer, as
after training), then a random affine is applied. That gives every layer a
realistic, non-trivial range for calibration and the precision methods.

Architectures follow the MLPerf Tiny v1.0 reference models:
- resnet8: image classification (CIFAR-10), 3x32x32, stem + three residual stacks (16/32/64), ~78k params.
- ds_cnn: keyword spotting, 1x49x10 MFCC, 64 channels, conv 10x4 stride 2 + 4 depthwise-separable blocks.
- fc_autoencoder: anomaly detection (ToyADMOS), 640-128-128-128-128-8-128-128-128-128-640, BN + ReLU.
- mobilenet_v1_025: visual wake words, 3x96x96, MobileNetV1 with width multiplier 0.25, 2 classes.
"""
from __future__ import annotations

import torch
from torch import nn


def conv_bn(cin: int, cout: int, k, stride=1, padding=0, groups=1, relu=True) -> nn.Sequential:
    layers = [nn.Conv2d(cin, cout, k, stride, padding, groups=groups, bias=True), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU()) if relu else nn.Sequential(*layers)


class ResidualStack(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.a = conv_bn(cin, cout, 3, stride, 1)
        self.b = conv_bn(cout, cout, 3, 1, 1, relu=False)
        self.skip = None if stride == 1 and cin == cout else conv_bn(cin, cout, 1, stride, 0, relu=False)

    def forward(self, x):
        y = self.b(self.a(x))
        return torch.relu(y + (x if self.skip is None else self.skip(x)))


class ResNet8(nn.Module):
    shape = (3, 32, 32)

    def __init__(self, classes: int = 10):
        super().__init__()
        self.stem = conv_bn(3, 16, 3, 1, 1)
        self.stacks = nn.Sequential(ResidualStack(16, 16, 1), ResidualStack(16, 32, 2), ResidualStack(32, 64, 2))
        self.pool = nn.AvgPool2d(8)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.stacks(self.stem(x))), 1))


class DSCNN(nn.Module):
    shape = (1, 49, 10)

    def __init__(self, classes: int = 12, width: int = 64):
        super().__init__()
        blocks = [conv_bn(1, width, (10, 4), 2, (5, 1))]
        for _ in range(4):
            blocks += [conv_bn(width, width, 3, 1, 1, groups=width), conv_bn(width, width, 1)]
        self.features = nn.Sequential(*blocks)
        self.pool = nn.AvgPool2d((25, 5))
        self.fc = nn.Linear(width, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class FCAutoencoder(nn.Module):
    shape = (640,)

    def __init__(self):
        super().__init__()
        widths = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128]
        layers = []
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.out = nn.Linear(128, 640)

    def forward(self, x):
        return self.out(self.body(x))


class MobileNetV1(nn.Module):
    shape = (3, 96, 96)

    def __init__(self, alpha: float = 0.25, classes: int = 2):
        super().__init__()
        c = lambda n: max(8, int(n * alpha))  # noqa: E731
        plan = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]
        layers = [conv_bn(3, c(32), 3, 2, 1)]
        cin = c(32)
        for cout, stride in plan:
            layers += [conv_bn(cin, cin, 3, stride, 1, groups=cin), conv_bn(cin, c(cout), 1)]
            cin = c(cout)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AvgPool2d(3)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


MODELS = {"resnet8": ResNet8, "ds_cnn": DSCNN, "fc_autoencoder": FCAutoencoder, "mobilenet_v1_025": MobileNetV1}


def synthetic_inputs(shape: tuple[int, ...], n: int, seed: int) -> torch.Tensor:
    """Seeded stand-in data: smooth random fields (images, spectrograms) or vectors, roughly unit range."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *shape, generator=g)
    if len(shape) == 3:  # low-pass: neighbouring pixels correlate, as in real images and MFCCs
        x = nn.functional.avg_pool2d(x, 3, 1, 1) * 2
    return x


def make(name: str, seed: int = 0) -> nn.Module:
    """The architecture with seeded weights and BatchNorm statistics measured on synthetic inputs."""
    torch.manual_seed(seed)
    model = MODELS[name]()
    bns = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    for bn in bns:
        bn.momentum = None  # cumulative average over the calibration batches
        bn.reset_running_stats()
    model.train()
    with torch.no_grad():
        for i in range(4):
            model(synthetic_inputs(model.shape, 64, seed + 1 + i))
    g = torch.Generator().manual_seed(seed + 99)
    for bn in bns:
        with torch.no_grad():
            bn.weight.copy_(0.6 + 0.8 * torch.rand(bn.num_features, generator=g))
            bn.bias.copy_(0.2 * torch.randn(bn.num_features, generator=g))
    return model.eval()
