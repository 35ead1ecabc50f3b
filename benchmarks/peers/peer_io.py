"""Store I/O shared by the peer runners (numpy only: they run in the peers' own venv).

Input: an ``.npz`` with ``full (z, y, x)`` and ``split (2, z, y, x)`` float32 (the benchmark
writes it from ``recon.zarr``). Output: ``<out>.npy`` (float32, ``(z, y, x)``) written
atomically (temp file + rename) and ``<out>.json`` with the times, so a killed run leaves no
output that looks complete.
"""

from __future__ import annotations

import json
import os
import resource
import time
from pathlib import Path

import numpy as np


def load(path: str) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {k: np.asarray(data[k], dtype=np.float32) for k in data.files}


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def save(out: str, vol: np.ndarray, info: dict) -> None:
    p = Path(out)
    tmp = p.with_name(f".{p.name}.tmp.npy")
    np.save(tmp, np.asarray(vol, dtype=np.float32))
    os.replace(tmp, p)
    p.with_suffix(".json").write_text(json.dumps(info, indent=1))


class Clock:
    def __init__(self) -> None:
        self.wall0, self.cpu0 = time.perf_counter(), cpu_seconds()

    def lap(self) -> dict[str, float]:
        return {"wall_s": time.perf_counter() - self.wall0, "cpu_s": cpu_seconds() - self.cpu0}
