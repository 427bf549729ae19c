"""A content-addressed store of stage results, shared by sweeps, `hwgen synth` and concurrent runs.

Every entry is keyed by a digest of everything its stage reads (model bytes,
quantization settings, Verilog, board, tool versions), so an entry never goes
stale: a changed input is a different key. Writes go to a temporary file and
are renamed into place, so concurrent runs (processes, Ray workers on a
shared file system) never see half an entry; two runs computing the same
entry write the same value.

Location: `$HWGEN_CACHE` if set, else `~/.cache/hwgen` (`$XDG_CACHE_HOME`
respected). The Verilator models of `hwgen sim` live under `verilator/`
there, stage results under `results/<stage>/`.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


def default_root() -> Path:
    if os.environ.get("HWGEN_CACHE"):
        return Path(os.environ["HWGEN_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hwgen"


def digest(*parts: Any) -> str:
    """sha256 of the parts: bytes as they are, anything else as canonical JSON."""
    h = hashlib.sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else json.dumps(part, sort_keys=True, default=str).encode()
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def tool_versions(*packages: str) -> dict[str, str]:
    out = {}
    for name in packages:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


class ResultCache:
    """JSON results by (stage, key); `path(stage, key)` for artefacts such as build directories."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root else default_root()

    def _file(self, stage: str, key: str) -> Path:
        return self.root / "results" / stage / key[:2] / f"{key}.json"

    def get(self, stage: str, key: str) -> dict | None:
        try:
            return json.loads(self._file(stage, key).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def put(self, stage: str, key: str, value: dict) -> None:
        target = self._file(stage, key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{key[:8]}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(value, f, sort_keys=True)
        os.replace(tmp, target)

    def entries(self, stage: str):
        """Every readable result of a stage, in no particular order."""
        root = self.root / "results" / stage
        for f in root.rglob("*.json") if root.exists() else []:
            try:
                yield json.loads(f.read_text())
            except (OSError, ValueError):
                continue

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key[:2] / key
