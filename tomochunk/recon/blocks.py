"""One block of detector rows: read, preprocess, reconstruct the full set and the K splits.

Every block task of :func:`tomochunk.recon.volume.reconstruct` runs :func:`block_task`; the
raw rows are read inside the task (:class:`tomochunk.chunks.ZarrSource` with ``axis=-2``),
so a damaged chunk fails that task with the block's rows named.
"""

from __future__ import annotations

import numpy as np

from ..chunks import ZarrSource
from ..config import PreprocessConfig, ReconConfig
from ..errors import InputError, located
from .order import by_angle, weight_factors
from .registry import RECONSTRUCTORS
from .split import full_is_mean_of_splits, split_indices
from .stitch import stitch_half_acquisition

__all__ = ["block_task", "reconstruct_sinograms"]


def reconstruct_sinograms(
    att: np.ndarray,
    theta: np.ndarray,
    center: float | np.ndarray,
    config: ReconConfig,
    *,
    nthreads: int | None = None,
) -> np.ndarray:
    """Reconstruct the full set and the K interleaved subsets of one preprocessed block.

    Parameters
    ----------
    att : ndarray, shape (n_angles, n_rows, n_det)
        float32 attenuation line integrals (preprocessed).
    theta : ndarray, shape (n_angles,)
        Angles in radians.
    center : float or ndarray of shape (n_rows,)
        Rotation axis, 0-based detector column.
    config : ReconConfig
        ``splits``, ``backend`` and the filter/geometry options.
    nthreads : int, optional
        Threads for the backend.

    Returns
    -------
    ndarray, shape (1 + K, n_rows, n, n), float32
        Index 0 is the full reconstruction, ``1 + j`` subset ``j``.
    """
    fn = RECONSTRUCTORS.get(config.backend)
    k = config.splits
    if config.half_acquisition:  # pairs of opposite projections, each pair in one split
        att, theta, center = stitch_half_acquisition(att, theta, float(center))
    subsets = split_indices(att.shape[0], k)  # acquisition order (see recon.order)
    weighted = config.backend != "native"  # native weights every angle itself

    def run(idx: np.ndarray) -> np.ndarray:
        idx = by_angle(idx, theta)
        sino = np.ascontiguousarray(att[idx])
        factors = weight_factors(theta[idx]) if weighted else None
        if factors is not None:
            sino *= factors.astype(np.float32)[:, None, None]
        return fn(sino, theta[idx], center, config, nthreads=nthreads)

    out = None
    for j, idx in enumerate(subsets):
        rec = run(idx)
        if out is None:
            out = np.empty((k + 1,) + rec.shape, dtype=np.float32)
        out[1 + j] = rec
    assert out is not None
    if full_is_mean_of_splits(theta, k):
        np.mean(out[1:], axis=0, out=out[0])
    else:
        out[0] = run(np.arange(att.shape[0]))
    return out


def _read_rows(data: np.ndarray | ZarrSource, rows: tuple[int, int]) -> np.ndarray:
    return data.read(*rows) if isinstance(data, ZarrSource) else np.asarray(data)


def _load(data: np.ndarray | ZarrSource | None, rows: tuple[int, int]) -> np.ndarray | None:
    return None if data is None else _read_rows(data, rows)


def _block_failed(err: Exception, rows: tuple[int, int], source: str, stage: str) -> Exception:
    """``err`` re-raised with the block's detector rows and the scan named in the message."""
    where = f"block rows {rows[0]}-{rows[1] - 1} of {source}"
    if stage == "read":
        return InputError(
            f"{where}: cannot read the raw data ({type(err).__name__}: {err}); the scan store "
            "is damaged (corrupt or truncated chunk): re-create it with tomochunk ingest"
        )
    return located(err, where)


def block_task(
    proj: np.ndarray | ZarrSource,
    flat: np.ndarray | ZarrSource | None,
    dark: np.ndarray | ZarrSource | None,
    theta: np.ndarray,
    center: float | np.ndarray,
    preprocess: PreprocessConfig,
    config: ReconConfig,
    rows: tuple[int, int],
    halo: tuple[int, int],
    nthreads: int,
    source: str,
) -> np.ndarray:
    """Read (when given a :class:`ZarrSource`), preprocess and reconstruct rows ``rows``.

    ``rows`` includes the ``halo`` rows. Any exception is re-raised naming the block's own
    detector rows, the scan and the cause (:func:`_block_failed`).
    """
    from ..preprocess import preprocess_block

    own = (rows[0] + halo[0], rows[1] - halo[1])
    try:
        p, f, d = _read_rows(proj, rows), _load(flat, rows), _load(dark, rows)
    except Exception as err:  # noqa: BLE001 - re-raised with the block named
        raise _block_failed(err, own, source, "read") from err
    try:
        att, _report = preprocess_block(p, f, d, preprocess, row_offset=rows[0], row_halo=halo)
        return reconstruct_sinograms(att, theta, center, config, nthreads=nthreads)
    except Exception as err:  # noqa: BLE001 - re-raised with the block named
        raise _block_failed(err, own, source, "process") from err
