"""The noise level that NLM-type filters are given: measured from the split difference.

Filtered-backprojection noise is spatially correlated (the ramp filter colours it), so the
wavelet MAD estimate of :func:`skimage.restoration.estimate_sigma`, which assumes white
noise, is biased, and on smooth or repeated slices it can come out near 0 (NLM then returns
its input unchanged). The reconstruction's independent splits measure the noise directly:
``K`` splits of disjoint angle subsets have independent noise, each with ``K`` times the
variance of the full reconstruction's, so for any two of them

    sigma_full = std(s0 - s1) / sqrt(2 K)        (= std(s0 - s1) / 2 for K = 2)

This module computes that (per slice inside the field-of-view disc, then the median over
slices, so a few slices of air or of ring artefacts do not dominate) and resolves the
``FilterConfig.sigma`` setting into the number the filters take.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..errors import ConfigError, InputError

__all__ = ["SIGMA_MODES", "split_sigma", "resolve_sigma"]

#: Named ``FilterConfig.sigma`` settings (a number is also accepted).
SIGMA_MODES = ("auto-split", "wavelet")


def _disc(ny: int, nx: int) -> np.ndarray:
    y = np.arange(ny) - (ny - 1) / 2.0
    x = np.arange(nx) - (nx - 1) / 2.0
    r = 0.95 * min(ny, nx) / 2.0 - 1.0
    return np.hypot(y[:, None], x[None, :]) < r


def split_sigma(s0: Any, s1: Any, n_splits: int = 2) -> float:
    """Noise std of the full reconstruction from two of its ``n_splits`` independent splits.

    Parameters
    ----------
    s0, s1 : array_like (numpy, Dask or xarray), ``(z, y, x)`` or ``(y, x)``
        Two split reconstructions of the same volume.
    n_splits : int
        ``K``, the number of splits the full reconstruction averages.

    Returns
    -------
    float
        ``median_z std_{disc}(s0 - s1) / sqrt(2 K)``; 0 when the splits are identical.
    """
    a = s0.data if isinstance(s0, xr.DataArray) else s0
    b = s1.data if isinstance(s1, xr.DataArray) else s1
    if tuple(a.shape) != tuple(b.shape):
        raise InputError(f"the two splits differ in shape ({tuple(a.shape)} vs "
                         f"{tuple(b.shape)}); pass split[0] and split[1] of one recon store")
    if n_splits < 2:
        raise ConfigError(f"n_splits must be >= 2, got {n_splits}")
    d = a - b
    if d.ndim == 2:
        d = d[None]
    m = _disc(d.shape[-2], d.shape[-1])
    d = d[:, m] if isinstance(d, np.ndarray) else d.reshape(d.shape[0], -1)[:, m.ravel()]
    per_slice = d.astype(np.float64).std(axis=1)
    per_slice = np.asarray(per_slice.compute() if hasattr(per_slice, "compute") else per_slice)
    return float(np.median(per_slice) / np.sqrt(2.0 * n_splits))


def resolve_sigma(setting: str | float, recon: xr.Dataset | None = None) -> float | None:
    """The ``sigma`` to pass to :func:`~tomochunk.filters.nlm` / ``iternlm``.

    ``"wavelet"`` returns None (the filters' own per-chunk/per-slice wavelet estimate);
    a number is returned as is; ``"auto-split"`` measures it from ``recon``'s ``split``
    volumes (:func:`split_sigma`) and raises if there are none or they are identical.
    """
    if isinstance(setting, bool) or setting is None:
        raise ConfigError(f"sigma must be one of {', '.join(SIGMA_MODES)} or a number, "
                          f"got {setting!r}")
    if isinstance(setting, int | float):
        if not setting > 0:
            raise ConfigError(f"sigma must be > 0, got {setting!r}; or use 'auto-split'")
        return float(setting)
    if setting == "wavelet":
        return None
    if setting != "auto-split":
        raise ConfigError(f"sigma {setting!r} is not one of {', '.join(SIGMA_MODES)} or a "
                          "number")
    if recon is None or "split" not in recon or recon["split"].shape[0] < 2:
        raise InputError("sigma='auto-split' needs the reconstruction's split volumes "
                         "(split(split,z,y,x) with >= 2 splits); reconstruct with splits >= 2 "
                         "or set the filter sigma to 'wavelet' or a number")
    split = recon["split"]
    k = int(recon.attrs.get("n_splits", split.shape[0]))
    s = split_sigma(split[0], split[1], k)
    if not s > 0:
        raise InputError("the split volumes are identical (their difference is 0), so the "
                         "noise cannot be measured from them; set the filter sigma to "
                         "'wavelet' or a number")
    return s
