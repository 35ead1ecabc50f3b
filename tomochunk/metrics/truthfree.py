"""Truth-free quality: MSE against the signal, estimated from a held-out noisy reference.

A real scan has no ground truth. But if some projections are held out of every method (the
odd angles: splits 1 and 3 of ``K = 4``, the methods computed from splits 0 and 2), the
held-out reconstructions ``r_a`` and ``r_b`` have noise independent of every method's
output. With the reference ``r = (r_a + r_b) / 2 = s + n`` (``s`` the signal it sees, ``n``
its noise, independent of ``v``)::

    E[ mean (v - r)^2 ] = mean (v - s)^2 + var(n),    var(n) = var(r_a - r_b) / 4

so ``mean (v - r)^2 - var(r_a - r_b) / 4`` is an unbiased estimate of ``v``'s MSE against
``s``: it ranks methods as the truth would, without the truth, and penalises a network that
invents structure as much as one that leaves noise. ``s`` is the noise-free reconstruction
of the held-out angles (including its own angular-sampling artefacts, common to all methods),
so the estimate is the true MSE plus a method-independent offset that shrinks as the
held-out set grows.

The reference must not have been used by any method (training included), and the held-out
splits must be reconstructed on the same grid with the same filter as the methods' input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from ..errors import InputError
from .cnr import as_image, check_mask

__all__ = ["TruthFreeScore", "truth_free_mse", "holdout_splits", "holdout_datasets"]


@dataclass(frozen=True)
class TruthFreeScore:
    """Result of :func:`truth_free_mse` (all in the volume's units squared)."""

    #: Estimated MSE of the volume against the signal: ``mse_to_reference - noise_var``.
    mse: float
    #: Mean squared difference between the volume and the held-out reference.
    mse_to_reference: float
    #: Noise variance of the reference, ``var(r_a - r_b) / 4``.
    noise_var: float
    #: Voxels scored.
    n_voxels: int

    @property
    def rmse(self) -> float:
        """Square root of the (clipped at 0) MSE estimate."""
        return float(np.sqrt(max(self.mse, 0.0)))

    def to_dict(self) -> dict[str, float]:
        """JSON-ready dict."""
        return {"mse": self.mse, "rmse": self.rmse, "mse_to_reference": self.mse_to_reference,
                "noise_var": self.noise_var, "n_voxels": self.n_voxels}


def truth_free_mse(vol: Any, ref_a: Any, ref_b: Any, mask: Any = None) -> TruthFreeScore:
    """Estimate ``vol``'s MSE against the signal from two held-out reconstructions.

    Parameters
    ----------
    vol : array_like
        The method's output, computed WITHOUT the projections of ``ref_a`` and ``ref_b``.
    ref_a, ref_b : array_like
        Reconstructions of two disjoint held-out angle sets of equal size (same grid).
    mask : array_like of bool, optional
        Voxels to score (e.g. inside the sample); default all.

    Returns
    -------
    TruthFreeScore
    """
    v = as_image(vol, "volume")
    a = as_image(ref_a, "reference half a")
    b = as_image(ref_b, "reference half b")
    if not v.shape == a.shape == b.shape:
        raise InputError(f"the volume {v.shape} and the reference halves {a.shape}, {b.shape} "
                         "must have one shape; reconstruct the held-out splits on the "
                         "volume's grid")
    m = np.ones(v.shape, bool) if mask is None else check_mask(mask, v.shape, "mask")
    m = m & np.isfinite(v) & np.isfinite(a) & np.isfinite(b)
    if m.sum() < 2:
        raise InputError("fewer than 2 finite voxels inside the mask; use a larger mask")
    va, aa, ba = v[m], a[m], b[m]
    ref = (aa + ba) / 2.0
    d2 = float(np.mean((va - ref) ** 2))
    noise = float(np.var(aa - ba) / 4.0)
    return TruthFreeScore(d2 - noise, d2, noise, int(m.sum()))


def holdout_splits(n_splits: int = 4) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Which of ``n_splits`` interleaved angle splits the methods use and which are held out.

    Split ``j`` holds angles ``j, j + K, j + 2K, ...``, so the even-numbered splits together
    are the even angles and the odd-numbered ones the odd angles: both evenly spread over
    the half turn. The methods use the even splits (with K = 4: splits 0 and 2, a K = 2
    Noise2Inverse problem on the even angles) and the reference is the mean of the odd
    splits (1 and 3), whose two halves measure its noise.
    """
    if n_splits < 4 or n_splits % 2:
        raise InputError(f"holding out half of the angles needs an even number of splits "
                         f">= 4, got {n_splits}; reconstruct with splits=4")
    return tuple(range(0, n_splits, 2)), tuple(range(1, n_splits, 2))


def holdout_datasets(recon: Any) -> tuple[Any, Any]:
    """Split a K=4 (even K) ``recon`` dataset into the methods' input and the reference.

    Returns two datasets of the same grid: ``used`` with ``split`` = the even splits and
    ``full`` their mean (a K/2-split reconstruction of the even angles, the input of every
    method), and ``reference`` with ``split`` = the odd splits (pass its store as
    ``ReportConfig.truth_free_reference``). Write both (``tomochunk.io.store.write_dataset``)
    and run the methods on ``used``.
    """
    if "split" not in recon:
        raise InputError("the reconstruction has no 'split' volumes; reconstruct with splits=4")
    used, held = holdout_splits(int(recon["split"].shape[0]))
    out = []
    for idx in (used, held):
        split = recon["split"].isel(split=list(idx)).drop_vars("split", errors="ignore")
        coords = {k: v for k, v in split.coords.items() if k != "split"}
        ds = xr.Dataset({"split": (split.dims, split.data), "full": split.mean("split")},
                        coords=coords,
                        attrs={**recon.attrs, "n_splits": len(idx), "holdout_of": list(idx)})
        out.append(ds)
    return out[0], out[1]
