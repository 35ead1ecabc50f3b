"""Checks of the projection values seen while ingesting.

A scan whose projections are all zero, all negative (negated data) or complex would
reconstruct into a silent garbage volume. :func:`check_dtype` refuses complex data before
anything is written; :class:`ValueStats` gathers the minimum and maximum of each block as
it is copied and :meth:`ValueStats.check` refuses the scan (the partial store is removed).

Without flat and dark fields the projections are taken as transmission (already flat-field
corrected) and reconstructed as ``-log(value)``. :func:`check_transmission` decides from a
sample, before anything is written, whether they look like it: transmission lies in about
(0, 1], and even flat-field-corrected noise leaves the 99th percentile below
:data:`MAX_TRANSMISSION` (2.0) down to about 8 photons per pixel (Poisson counts of mean 8
have a 99th percentile of 15, i.e. 1.9 once divided by the flat). Raw detector counts lie in
the tens to tens of thousands. A sample whose 99th percentile is above the limit is refused
as raw counts, unless the user declares the values transmission (``assume_transmission``);
otherwise the scan proceeds with one warning that says how it will be reconstructed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError, LoggedWarning
from ..runtime.logs import get_logger

__all__ = ["MAX_TRANSMISSION", "ValueStats", "check_dtype", "check_transmission"]

log = get_logger("io.values")

#: Largest 99th percentile of a sample of projections without flats/darks that is taken as
#: transmission (flat-field corrected) rather than raw counts.
MAX_TRANSMISSION = 2.0
#: The percentile of the sample compared with :data:`MAX_TRANSMISSION` (robust to hot pixels).
PERCENTILE = 99.0


def check_dtype(dtype: Any, source: str) -> None:
    """Refuse projections that are not real numbers (complex, strings, objects)."""
    kind = np.dtype(dtype).kind
    if kind == "c":
        raise InputError(
            f"{source}: the projections are complex ({np.dtype(dtype)}); tomochunk needs real "
            "intensities: save abs() or the real part of the data and ingest that"
        )
    if kind not in "biuf":
        raise InputError(
            f"{source}: the projections have dtype {np.dtype(dtype)}, not numbers; give "
            "integer or floating-point intensities"
        )


@dataclass
class ValueStats:
    """Running minimum, maximum and finite count of the projections ingested so far."""

    lo: float = np.inf
    hi: float = -np.inf
    finite: int = 0

    def update(self, block: np.ndarray) -> None:
        data = np.asarray(block)
        if data.dtype.kind == "f":
            ok = np.isfinite(data)
            n = int(ok.sum())
            if n == 0:
                return
            data = data[ok] if n < data.size else data
        else:
            n = data.size
        if n:
            self.lo = min(self.lo, float(data.min()))
            self.hi = max(self.hi, float(data.max()))
            self.finite += n

    def check(self, source: str, normalized: bool) -> None:
        """Raise on unusable values: none finite, all equal, or all <= 0 without flats."""
        if self.finite == 0:
            raise InputError(f"{source}: no projection value is finite (all NaN or inf); "
                             "the file holds no usable data: check the dataset path")
        if self.hi == self.lo:
            raise InputError(
                f"{source}: every projection value is {self.lo:g}; the scan holds no image "
                "(an empty or failed acquisition): check the file"
            )
        if normalized and self.hi <= 0:
            raise InputError(
                f"{source}: the projections have no flats/darks and are all <= 0 (from "
                f"{self.lo:.4g} to {self.hi:.4g}), so they are not transmission: they look "
                "negated or already log-transformed with the wrong sign; give the raw counts "
                "with --flats/--darks, or transmission values in (0, 1]"
            )


def check_transmission(sample: np.ndarray, source: str, *, assume: bool = False,
                       warn: bool = True) -> float:
    """Decide whether projections without flats or darks can be taken as transmission.

    Parameters
    ----------
    sample : numpy.ndarray
        Some of the projections (e.g. one detector row at every angle).
    source : str
        The scan, for the messages.
    assume : bool
        The user declared the values transmission (``--assume-transmission``): values that
        look like raw counts are ingested with a warning instead of refused.
    warn : bool
        Warn (once: a log line and a Python warning) about how the values are reconstructed.

    Returns
    -------
    float
        The 99th percentile of the finite values of ``sample`` (NaN when none is finite; the
        copy's :class:`ValueStats` then refuses the scan).

    Raises
    ------
    InputError
        The 99th percentile is above :data:`MAX_TRANSMISSION` and ``assume`` is false.
    """
    data = np.asarray(sample, dtype=np.float64).ravel()
    data = data[np.isfinite(data)]
    if data.size == 0:
        return float("nan")
    p = float(np.percentile(data, PERCENTILE))
    if p > MAX_TRANSMISSION and not assume:
        raise InputError(
            f"{source}: no flats or darks, and the projections look like raw counts, not "
            f"transmission (99th percentile {p:.4g} > {MAX_TRANSMISSION:g}): -log(counts) "
            "without flat-field correction gives offset values and rings; give the flat and "
            "dark fields (--flats/--darks; run: --set ingest.flats=... --set ingest.darks=...), or "
            "--assume-transmission (run: --set ingest.assume_transmission=true) to ingest "
            "them anyway"
        )
    if not warn or p <= 0:  # all <= 0: ValueStats.check refuses the scan after the copy
        return p
    if p > MAX_TRANSMISSION:
        msg = (f"{source}: no flats or darks, and the projections reach {p:.4g} (99th "
               "percentile), so they look like raw counts rather than transmission; as "
               "--assume-transmission asks they are reconstructed as -log(value) without "
               "flat-field correction (intensity offset, rings from detector gain); give "
               "--flats and --darks for correct values")
    else:
        msg = (f"{source}: no flats or darks: the projections (99th percentile {p:.4g}) are "
               "taken as transmission, already flat-field corrected, and reconstructed as "
               "-log(value); give --flats and --darks if they are raw counts")
    log.warning("%s", msg)
    warnings.warn(msg, LoggedWarning, stacklevel=3)
    return p
