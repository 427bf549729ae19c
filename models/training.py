"""The one training loop the model scripts share: Adam, cosine schedule, seeded shuffles, minibatches of 64."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


def fit(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, seed: int = 0) -> None:
    torch.manual_seed(seed)
    x, y = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(y), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        sched.step()
    model.eval()


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(torch.as_tensor(x, dtype=torch.float32)).argmax(1).numpy() == y).mean())
