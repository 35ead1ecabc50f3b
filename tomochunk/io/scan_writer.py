"""Write a scan into ``scan.zarr``: the empty store, then the detector rows block by block.

The store layout of :mod:`tomochunk.io.ingest` (``docs/architecture.md``): every stack
chunked by blocks of detector rows holding all angles and all columns, compressed with
bit-shuffled zstd, and the coordinate ``theta(angle)`` in radians.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, BloscShuffle

from ..config import IngestConfig
from ..errors import InputError
from ..runtime.logs import get_logger
from ..runtime.progress import tqdm
from .readers import ScanLayout, ScanReader
from .values import ValueStats

__all__ = ["DIMS"]

log = get_logger("io.ingest")  # the ingest stage's logger

DIMS = {"projections": ("angle", "row", "col"), "flat": ("flat", "row", "col"),
        "dark": ("dark", "row", "col")}


def _compressors() -> list[Any]:
    # bit-shuffled zstd: raw detector counts compress well and decode fast
    return [BloscCodec(cname="zstd", clevel=3, shuffle=BloscShuffle.bitshuffle)]


def _copy_rows(reader: ScanReader, arrays: dict[str, Any], step: int, label: str,
               stats: ValueStats | None = None) -> int:
    """Copy the scan into the store ``step`` rows at a time; return the number of blocks."""
    layout = reader.layout
    rows = arrays["projections"].chunks[1]
    blocks = [(r, min(r + step, layout.n_rows)) for r in range(0, layout.n_rows, step)]
    for r0, r1 in tqdm(blocks, desc=label, unit="block"):
        try:
            block = reader.read_rows(r0, r1)
        except OSError as exc:
            raise InputError(f"{layout.source}: reading detector rows {r0}:{r1} failed ({exc}); "
                             "the file may be damaged or truncated") from exc
        for name, arr in arrays.items():
            data = block[name]
            expected = (arr.shape[0], r1 - r0, arr.shape[2])
            if data.shape != expected:
                raise InputError(f"{layout.source}: rows {r0}:{r1} of {name} read as shape "
                                 f"{data.shape}, expected {expected}; is the file damaged?")
            if name == "projections" and stats is not None:
                stats.update(data)
            # chunk by chunk: zarr then encodes one chunk-sized copy at a time
            for c0 in range(0, r1 - r0, rows):
                arr[:, r0 + c0:min(r0 + c0 + rows, r1), :] = data[:, c0:c0 + rows, :]
        del block
    return len(blocks)


def _rows_per_read(row_bytes: int, cfg: IngestConfig) -> int:
    """The largest multiple of ``rows_per_chunk`` whose block fits ``read_block_mb``."""
    budget = cfg.read_block_mb * 2**20
    chunk_bytes = row_bytes * cfg.rows_per_chunk
    if chunk_bytes > budget:
        log.warning("one chunk of %d rows needs %.3g MiB, more than read_block_mb=%g; lower "
                    "--rows-per-chunk to bound memory", cfg.rows_per_chunk, chunk_bytes / 2**20,
                    cfg.read_block_mb)
    return cfg.rows_per_chunk * max(1, int(budget // max(chunk_bytes, 1)))


def _store_attrs(layout: ScanLayout) -> dict[str, Any]:
    attrs: dict[str, Any] = dict(layout.attrs)
    attrs.update(source=layout.source, source_format=layout.format,
                 n_angles=layout.n_angles, normalized=layout.normalized)
    if layout.pixel_size_um is not None:
        attrs["pixel_size_um"] = float(layout.pixel_size_um)
    return attrs


def _create_arrays(tmp: Path, layout: ScanLayout, rows_per_chunk: int) -> dict[str, Any]:
    """Create the empty store: the stacks chunked by rows, and the theta coordinate."""
    group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
    rows = min(rows_per_chunk, layout.n_rows)
    arrays = {}
    for name, spec in layout.variables().items():
        arr = group.create_array(
            name, shape=spec.shape, chunks=(spec.shape[0], rows, spec.shape[2]),
            dtype=spec.dtype, dimension_names=list(DIMS[name]), compressors=_compressors(),
            fill_value=0,
        )
        if name == "projections":
            arr.attrs["coordinates"] = "theta"
        arrays[name] = arr
    theta = group.create_array("theta", shape=(layout.n_angles,), chunks=(layout.n_angles,),
                               dtype="float64", dimension_names=["angle"], fill_value=0.0)
    theta[:] = layout.theta
    theta.attrs.update(units="rad", long_name="rotation angle of each projection")
    return arrays


def _log_layout(layout: ScanLayout, out: Any) -> None:
    deg = np.rad2deg(layout.theta)
    parts = [f"projections {layout.projections.shape} {layout.projections.dtype}"]
    for name in ("flat", "dark"):
        spec = getattr(layout, name)
        parts.append(f"{name} {spec.shape} {spec.dtype}" if spec else f"no {name}")
    log.info("%s (%s): %s; theta %.4g..%.4g deg -> %s", layout.source, layout.format,
             ", ".join(parts), deg[0], deg[-1], out)
    if layout.pixel_size_um is None:
        log.warning("%s: pixel size unknown; lengths (report axes, FRC resolution) are "
                    "given in pixels: pass --pixel-size-um to get physical units",
                    layout.source)


