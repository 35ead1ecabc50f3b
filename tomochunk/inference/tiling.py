"""In-plane tiling of a prediction: exact with a full halo, blended with a shorter one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..errors import ModelError
from .models import Predictor

__all__ = ["predict_tiled", "tile_windows", "tiling"]


def tile_windows(n: int, tile: int, halo: int, blend: bool) -> list[tuple[int, int, np.ndarray]]:
    """Tiles of an axis of length ``n``: ``(start, stop, weight)`` of each extended tile.

    Cores ``[c0, c1)`` of ``tile`` pixels are extended by ``halo`` on both sides (clipped).
    Without ``blend`` the weight is 1 on the core and 0 on the halo (exact pasting); with it,
    the ``2 * halo`` overlaps get complementary cosine² ramps (the weights sum to one).
    """
    out = []
    for c0 in range(0, n, tile):
        c1 = min(n, c0 + tile)
        e0, e1 = max(0, c0 - halo), min(n, c1 + halo)
        pos = np.arange(e0, e1) + 0.5
        if not blend or halo == 0:
            w = ((pos > c0) & (pos < c1)).astype(np.float64)
        else:
            w = np.ones(e1 - e0)
            if c0 > 0:
                t = np.clip((pos - (c0 - halo)) / (2 * halo), 0, 1)
                w *= np.sin(0.5 * np.pi * t) ** 2
            if c1 < n:
                t = np.clip((pos - (c1 - halo)) / (2 * halo), 0, 1)
                w *= np.cos(0.5 * np.pi * t) ** 2
        out.append((e0, e1, w))
    return out


def predict_tiled(model: Predictor, x: np.ndarray, tile: int | None, halo: int,
             blend: bool) -> np.ndarray:
    """Predict ``(B, C, H, W) -> (B, H, W)``, tiled in-plane when ``tile`` is set."""
    b, _, h, w = x.shape
    if tile is None or (tile >= h and tile >= w):
        return np.asarray(model.predict(np.ascontiguousarray(x)), dtype=np.float32)
    out = np.zeros((b, h, w), np.float64)
    wsum = np.zeros((h, w), np.float64)
    for y0, y1, wy in tile_windows(h, tile, halo, blend):
        for x0, x1, wx in tile_windows(w, tile, halo, blend):
            weight = wy[:, None] * wx[None, :]
            pred = model.predict(np.ascontiguousarray(x[:, :, y0:y1, x0:x1]))
            out[:, y0:y1, x0:x1] += weight * pred
            wsum[y0:y1, x0:x1] += weight
    return (out / wsum).astype(np.float32)


def tiling(meta: Mapping[str, Any], tile: int | None,
            tile_halo: int | None) -> tuple[int | None, int, bool]:
    """``(tile, halo, blend)``: exact when the halo covers the receptive radius."""
    if tile is None:
        return None, 0, False
    radius = meta.get("receptive_radius")
    if tile_halo is None:
        if radius is None:
            raise ModelError(
                "the model metadata has no receptive_radius, so the exact in-plane halo is "
                "unknown: give tile_halo (--tile-halo) or do not tile"
            )
        tile_halo = int(radius)
    blend = radius is None or tile_halo < int(radius)
    # a pooling network (UNet) is translation-equivariant only on its alignment grid: tiles
    # and halos in multiples of it put every tile's origin on the grid of the whole slice
    a = alignment(meta)
    tile, tile_halo = -(-int(tile) // a) * a, -(-int(tile_halo) // a) * a
    return int(tile), int(tile_halo), bool(blend)


def alignment(meta: Mapping[str, Any]) -> int:
    """Shifts (pixels) under which the model's network is translation-equivariant."""
    if meta.get("network") != "unet":
        return 1
    params = meta.get("network_params") or {}
    pooling: int = 2 ** int(params.get("depth", 3))  # typeshed: int ** int may be a float
    return pooling * int(params.get("space_to_depth", 1))
