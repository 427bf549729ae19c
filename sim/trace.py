"""Decode the harness's trace file and check it against the golden vectors, layer by layer.

As strict as the per-cycle testbench it replaces: for every inference, every
traced layer must be written exactly `size` times (a dropped or doubled write
fails even when the values happen to match), every element must equal the
golden integer, and the output stream must equal the golden output. The first
wrong element of the first wrong layer (graph order) is named per inference.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .harness import INFER, LAYER, OUTPUT, WRITE, CYCLE_BITS, TraceFormat

_NIBBLE = np.zeros(256, dtype=np.uint64)
for _i, _c in enumerate(b"0123456789abcdef"):
    _NIBBLE[_c] = _i


class TraceError(Exception):
    """The trace file is not what the harness writes (truncated, or a record out of place)."""


def decode(path: Path, fmt: TraceFormat) -> tuple[np.ndarray, np.ndarray]:
    """(tags, payloads) of every record, as uint64 arrays."""
    if fmt.record_bits > 64:
        raise TraceError(f"trace records of {fmt.record_bits} bits do not fit the 64-bit decoder")
    raw = np.frombuffer(Path(path).read_bytes(), dtype=np.uint8)
    width = fmt.hex_digits + 1
    if raw.size % width:
        raise TraceError(f"trace file {path} is truncated ({raw.size} bytes, records of {width})")
    lines = raw.reshape(-1, width)
    if lines.size and not (lines[:, -1] == ord("\n")).all():
        raise TraceError(f"trace file {path} has a malformed record")
    value = np.zeros(len(lines), dtype=np.uint64)
    for j in range(fmt.hex_digits):
        value = (value << np.uint64(4)) | _NIBBLE[lines[:, j]]
    pb = np.uint64(fmt.payload_bits)
    return value >> pb, value & ((np.uint64(1) << pb) - np.uint64(1))


def _signed(v: np.ndarray, bits: int) -> np.ndarray:
    v = v.astype(np.int64)
    return np.where(v >> (bits - 1) & 1, v - (1 << bits), v)


def check(path: Path, fmt: TraceFormat, layers: list[dict], expected: dict[str, np.ndarray], output: str,
          count: int) -> dict:
    """The report of a run: per-inference cycles, per-layer cycles (inference 0), predictions, mismatches.

    `layers`: traced layers in graph order (`trace_id`, `name`, `size`, `shape`);
    `expected[name]`: golden integers, one row per inference.
    """
    tags, payloads = decode(path, fmt)
    ends = np.nonzero(tags == INFER)[0]
    report = {"inferences": [], "mismatches": [], "predictions": [], "layer_cycles": {}, "error": None,
              "records": int(len(tags))}
    if len(ends) < count:
        report["error"] = f"the simulation finished {len(ends)} of {count} inferences"
    by_id = {lay["trace_id"]: lay for lay in layers}
    sb, ib = fmt.store_bits, fmt.index_bits
    begin = 0
    for n, end in enumerate(ends[:count]):
        t, p = tags[begin:end], payloads[begin:end]
        begin = end + 1
        writes = p[t == WRITE]
        index = (writes & np.uint64((1 << ib) - 1)).astype(np.int64)
        data = _signed((writes >> np.uint64(ib)) & np.uint64((1 << sb) - 1), sb)
        sat = ((writes >> np.uint64(ib + sb)) & np.uint64(1)).astype(np.int64)
        layer = (writes >> np.uint64(ib + sb + 1)).astype(np.int64)
        unknown = ~np.isin(layer, list(by_id))
        if unknown.any():
            report["error"] = f"inference {n}: write to unknown layer {int(layer[unknown][0])}"
            break
        bad = None
        sats = {}
        for lay in layers:
            sel = layer == lay["trace_id"]
            idx, vals = index[sel], data[sel]
            sats[lay["name"]] = int(sat[sel].sum())
            if bad is not None:
                continue
            if (idx >= lay["size"]).any():
                bad = _mismatch(n, lay, int(idx[idx >= lay["size"]][0]), None, None, 0, int(sel.sum()))
                continue
            got = np.full(lay["size"], np.iinfo(np.int64).min, dtype=np.int64)
            got[idx] = vals
            want = expected[lay["name"]][n]
            wrong = np.nonzero(got != want)[0]
            if len(idx) != lay["size"] or wrong.size:
                first = int(wrong[0]) if wrong.size else None
                bad = _mismatch(n, lay, first, None if first is None else int(got[first]),
                                None if first is None else int(want[first]), int(wrong.size), len(idx))
        outputs = [int(v) for v in _signed(p[t == OUTPUT] & np.uint64((1 << sb) - 1), sb)]
        out_want = [int(v) for v in expected[output][n]]
        if bad is None and outputs != out_want:
            bad = {"inference": n, "layer": "outputs stream", "got": outputs, "want": out_want}
        if bad:
            report["mismatches"].append(bad)
        report["predictions"].append(int(np.argmax(outputs)) if outputs else -1)
        report["inferences"].append({"cycles": int(payloads[end] & np.uint64((1 << CYCLE_BITS) - 1)),
                                     "saturations": sats})
        if n == 0:
            report["layer_cycles"] = _layer_cycles(t, p, by_id, report["inferences"][0]["cycles"])
    return report


def _mismatch(n: int, lay: dict, idx: int | None, got: int | None, want: int | None, wrong: int, writes: int) -> dict:
    coord = [int(c) for c in np.unravel_index(idx, lay["shape"])] if idx is not None and idx < lay["size"] else None
    return {"inference": n, "layer": lay["name"], "index": idx, "coord": coord, "got": got, "want": want,
            "wrong_values": wrong, "writes": writes, "size": lay["size"]}


def _layer_cycles(tags: np.ndarray, payloads: np.ndarray, by_id: dict, total: int) -> dict[str, int]:
    """Cycles from the previous layer's last write to this layer's last write; the output stream takes the rest."""
    out, prev = {}, 0
    mask = np.uint64((1 << CYCLE_BITS) - 1)
    for p in payloads[tags == LAYER]:
        lay = by_id.get(int(p >> np.uint64(CYCLE_BITS)))
        if lay is None:
            continue
        last = int(p & mask)
        out[lay["name"]] = last - prev
        prev = last
    out["(output stream)"] = total - 1 - prev
    return out
