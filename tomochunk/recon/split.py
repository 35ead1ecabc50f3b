"""Interleaved angle splits of Noise2Inverse (Hendriksen, Pelt & Batenburg 2020).

Projection ``i`` goes to subset ``i mod K``. Each subset's reconstruction is an independent
noisy estimate of the same object; their mean is (for equally spaced angles with
``n_angles`` divisible by ``K``) exactly the reconstruction from all angles, because FBP is
linear and each subset's angular weight is ``K`` times the full set's.

When ``n_angles`` is not a multiple of ``K`` (the tooth: 181 angles, K = 2) the subsets have
unequal sizes (91 + 90). We allow this with a warning rather than dropping projections: each
subset is still reconstructed with correct angular weights, and the store records every
subset's size in ``angles_per_split``.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import ConfigError, InputError

__all__ = [
    "split_indices",
    "angles_per_split",
    "check_splits",
    "full_is_mean_of_splits",
    "angular_coverage",
]


def split_indices(n_angles: int, k: int) -> list[np.ndarray]:
    """Indices of the projections of each of ``k`` interleaved subsets.

    Examples
    --------
    >>> [s.tolist() for s in split_indices(5, 2)]
    [[0, 2, 4], [1, 3]]
    """
    return [np.arange(j, n_angles, k) for j in range(k)]


def angles_per_split(n_angles: int, k: int) -> list[int]:
    """Number of projections in each subset."""
    return [len(s) for s in split_indices(n_angles, k)]


def angular_coverage(theta: np.ndarray) -> float:
    """Angular range (radians) covered by ``theta`` modulo ``pi``: ``pi`` minus the largest gap
    between neighbouring angles, where the typical spacing is counted as covered."""
    t = np.sort(np.mod(np.asarray(theta, dtype=np.float64), np.pi))
    if t.size < 2:
        return 0.0
    gaps = np.diff(np.append(t, t[0] + np.pi))
    return float(np.pi - gaps.max() + np.median(gaps))


def check_splits(theta: np.ndarray, k: int) -> list[int]:
    """Validate a split of ``theta`` into ``k`` subsets; return the subset sizes.

    Raises
    ------
    ConfigError
        If ``k < 2``.
    InputError
        If ``k`` exceeds the number of angles or a subset would hold fewer than 2 angles.

    Warns
    -----
    UserWarning
        If the subsets have unequal sizes, or the angles (or a subset's) do not cover about
        180 degrees.
    """
    theta = np.asarray(theta, dtype=np.float64).ravel()
    n = theta.size
    if not isinstance(k, int | np.integer) or k < 2:
        raise ConfigError(
            f"splits={k!r}: Noise2Inverse needs K >= 2 interleaved subsets; use splits=2 "
            "(the paper) or 4"
        )
    if n < 4:
        raise InputError(
            f"the scan has only {n} projection angle(s); Noise2Inverse needs at least 4 "
            "(2 subsets of 2 angles): ingest the full scan"
        )
    if k > n:
        raise InputError(
            f"splits={k} is larger than the number of projection angles ({n}); "
            f"use at most splits={max(n // 2, 1)} so every subset has at least 2 angles"
        )
    sizes = angles_per_split(n, k)
    if min(sizes) < 2:
        raise InputError(
            f"splits={k} leaves only {min(sizes)} angle(s) in a subset ({n} angles in all); "
            f"every subset needs at least 2 angles: use splits <= {n // 2}"
        )
    if len(set(sizes)) > 1:
        warnings.warn(
            f"{n} projections do not divide into {k} equal subsets: the subsets hold "
            f"{sizes} angles (recorded in angles_per_split). Each is weighted correctly; to "
            f"get equal subsets drop the last {n % k} projection(s).",
            UserWarning,
            stacklevel=2,
        )
    coverage = np.degrees(angular_coverage(theta))
    if coverage < 175.0:
        warnings.warn(
            f"the projection angles cover only {coverage:.1f} degrees of the 180 a "
            "parallel-beam reconstruction needs (limited-angle data): expect streaks and "
            "missing-wedge artefacts; check that the angles are in radians",
            UserWarning,
            stacklevel=2,
        )
    return sizes


def full_is_mean_of_splits(theta: np.ndarray, k: int, rtol: float = 1e-3) -> bool:
    """True when the full reconstruction equals the mean of the ``k`` subset ones.

    This holds for every linear reconstructor when the angles are equally spaced modulo
    ``pi`` and their number is a multiple of ``k``: each subset is then equally spaced too
    and is weighted ``pi / (n / k)`` per angle, ``k`` times ``pi / n``.
    """
    theta = np.asarray(theta, dtype=np.float64).ravel()
    n = theta.size
    if n % k:
        return False
    t = np.sort(np.mod(theta, np.pi))
    gaps = np.diff(np.append(t, t[0] + np.pi))
    return bool(np.all(np.abs(gaps - np.pi / n) <= rtol * np.pi / n))
