"""Cheap checks of an ingested scan before normalisation and splitting (:func:`validate_scan`)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from ..errors import ConfigError, InputError
from ..runtime.logs import get_logger
from .store import open_scan

__all__ = ["ScanCheck", "validate_scan"]

log = get_logger("io.ingest")  # the ingest stage's logger



@dataclass
class ScanCheck:
    """Result of :func:`validate_scan`.

    Attributes
    ----------
    n_angles : int
    has_flat : bool
        Whether the scan has flat fields (the flat-dark check ran).
    n_bad_pixels : int
        Pixels where mean flat minus mean dark is zero, negative or not finite.
    bad_fraction : float
        ``n_bad_pixels`` over the pixels of one frame.
    bad_pixels : list of (row, col)
        Up to ten of them (e.g. a header pixel at ``(0, 0)``).
    """

    n_angles: int
    has_flat: bool
    n_bad_pixels: int = 0
    bad_fraction: float = 0.0
    bad_pixels: list[tuple[int, int]] = field(default_factory=list)


def validate_scan(
    ds: xr.Dataset | str | os.PathLike[str],
    n_splits: int | None = None,
    *,
    max_bad_fraction: float = 0.01,
) -> ScanCheck:
    """Cheap checks of a scan before normalisation and splitting.

    Parameters
    ----------
    ds : xarray.Dataset or path
        A scan dataset (:func:`tomochunk.io.store.open_scan`) or the path of ``scan.zarr``.
    n_splits : int, optional
        When given, the number of projections must be divisible by it, so that the
        interleaved subsets of Noise2Inverse (projection i goes to subset i mod K; Hendriksen
        et al., IEEE Trans. Comput. Imaging 6 (2020) 1320-1335) all have the same number of
        angles.
    max_bad_fraction : float
        Largest tolerated fraction of pixels where mean flat <= mean dark; isolated dead or
        header pixels (like pixel [0, 0] of Diamond TIFFs) below it only warn.

    Returns
    -------
    ScanCheck

    Raises
    ------
    InputError
        When the number of projections is not divisible by ``n_splits``, or flat minus dark
        is zero, negative or not finite in more than ``max_bad_fraction`` of the pixels.
    """
    if not isinstance(ds, xr.Dataset):
        ds = open_scan(ds)
    n = int(ds.sizes["angle"])
    if n_splits is not None:
        if n_splits < 1:
            raise ConfigError(f"n_splits must be >= 1, got {n_splits}")
        if n % n_splits:
            raise InputError(
                f"the scan has {n} projections, which is not divisible by {n_splits} splits: the "
                f"interleaved subsets would get different numbers of angles; drop "
                f"{n % n_splits} projection(s) (e.g. the last) or choose a number of splits "
                f"that divides {n}"
            )
    if "flat" not in ds.variables:
        return ScanCheck(n_angles=n, has_flat=False)
    flat = ds["flat"].astype("float64").mean("flat")
    dark = ds["dark"].astype("float64").mean("dark") if "dark" in ds.variables else 0.0
    diff = np.asarray((flat - dark).values)
    bad = ~(diff > 0)  # also catches NaN
    n_bad = int(bad.sum())
    frac = n_bad / bad.size
    where = [(int(r), int(c)) for r, c in np.argwhere(bad)[:10]]
    if frac > max_bad_fraction:
        raise InputError(
            f"flat minus dark is zero, negative or not finite in {n_bad} of {bad.size} pixels "
            f"({frac:.2%}, more than the {max_bad_fraction:.2%} allowed); the flat or dark "
            "fields are wrong (swapped, saturated, taken without beam?): check them or give "
            "the right files"
        )
    if n_bad:
        msg = (f"flat minus dark is zero or negative in {n_bad} isolated pixel(s) "
               f"({frac:.3%}; e.g. [row, col] = {where[:3]}): dead or header pixels")
        log.warning("%s", msg)
        warnings.warn(msg, stacklevel=2)
    return ScanCheck(n_angles=n, has_flat=True, n_bad_pixels=n_bad, bad_fraction=frac,
                     bad_pixels=where)
