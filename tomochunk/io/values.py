"""Checks of the projection values seen while ingesting, block by block.

A scan whose projections are all zero, all negative (negated data) or complex would
reconstruct into a silent garbage volume. :func:`check_dtype` refuses complex data before
anything is written; :class:`ValueStats` gathers the minimum and maximum of each block as
it is copied and :meth:`ValueStats.check` refuses the scan (the partial store is removed)
or warns once about raw counts without flat and dark fields.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..progress import get_logger

__all__ = ["ValueStats", "check_dtype"]

log = get_logger("io.values")

#: Largest value taken as transmission (flat-field corrected) rather than raw counts.
MAX_TRANSMISSION = 2.0


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
        """Raise on unusable values; warn once about raw counts without flats/darks."""
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
        if normalized and self.hi > MAX_TRANSMISSION:
            msg = (f"{source}: no flats or darks, and the projections reach {self.hi:.4g}, so "
                   "they look like raw counts rather than transmission: they are reconstructed "
                   "as -log(value) without flat-field correction (intensity offset, rings "
                   "from detector gain); give --flats and --darks for correct values")
            log.warning("%s", msg)
            warnings.warn(msg, stacklevel=3)
