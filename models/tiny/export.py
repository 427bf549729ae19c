"""Write the MLPerf Tiny ports as torch.export archives: `python models/tiny/export.py [OUT_DIR]`.

Each archive records its input shape (the export's example input), so
`hwgen build models/tiny/resnet8.pt2` needs no --input-shape.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nets import MODELS, make  # noqa: E402


def export(name: str, out_dir: Path, seed: int = 0) -> Path:
    model = make(name, seed)
    path = Path(out_dir) / f"{name}.pt2"
    torch.export.save(torch.export.export(model, (torch.zeros(1, *model.shape),)), str(path))
    return path


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent
    for name in MODELS:
        model = make(name)
        params = sum(p.numel() for p in model.parameters())
        print(f"{export(name, out)}: {params} parameters, input {model.shape}")
