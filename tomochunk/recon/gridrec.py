"""Native reconstructor: Fourier-gridding filtered backprojection with ``finufft``.

Method (the gridrec family: Dowd et al. 1999, Marone & Stampanoni 2012; NUFFT: Barnett,
Magland & af Klinteberg 2019). Filtered backprojection of a parallel-beam sinogram is

.. math::

    f(\\mathbf{x}) = \\sum_\\theta w_\\theta \\int P_\\theta(\\omega)\\,H(\\omega)\\,
    e^{2\\pi i \\omega\\, \\mathbf{x}\\cdot\\hat\\theta}\\, d\\omega ,

where :math:`P_\\theta` is the 1D Fourier transform of the projection at angle
:math:`\\theta`, :math:`H` the ramp filter times a window, and :math:`w_\\theta` the angular
quadrature weight (``pi / n_angles`` for equally spaced angles). Discretised, the filtered
projections' 1D FFTs are samples of the image spectrum on a polar grid, and the sum over
those samples at every pixel is exactly a type-1 non-uniform FFT. So, per slice:

1. pad the detector row (zero, or edge values for local tomography), ``rfft`` it, multiply by
   the filter and by the phase ramp ``exp(2 pi i w c)`` that moves the rotation axis ``c`` to
   the origin (so every slice may have its own centre, at sub-pixel precision, for free),
   ``irfft``;
2. crop the filtered projection to the odd length ``L`` that covers every pixel of the output
   (``|s| <= (n-1)/sqrt(2)``, or ``(n-1)/2`` with ``circle=True``), and FFT it: these ``L``
   coefficients per angle represent the filtered projection exactly at the detector pixels and
   interpolate it band-limitedly between them (better than the linear interpolation of a
   pixel-driven backprojector);
3. two real slices are packed in one complex transform (the point set is symmetric in
   ``+-w`` so the real and imaginary parts of the result separate, up to the NUFFT accuracy
   ``eps``), and one ``finufft`` plan with ``n_trans`` pairs is reused for all the slices of
   a block. The angular weights ``w_theta`` are half the gaps to the neighbouring angles
   modulo ``pi`` (:func:`~tomochunk.recon.geometry.angle_weights`), so irregular,
   360-degree and subset angle sets are weighted correctly.

Scale: the output is linear attenuation per pixel (like TomoPy gridrec and ASTRA with unit
pixels): a uniform disk of attenuation ``mu`` per pixel, whose line integrals are in pixel
units, reconstructs to ``mu``.

Geometry conventions (``tomopy_convention=False``, the default):

- the sinogram is ``(angle, row, col)``; detector pixel ``j`` is centred at coordinate ``j``;
  ``center`` is the 0-based column of the rotation axis (``(n_det - 1) / 2`` = the middle);
- the output slice ``image[y, x]`` is ``n x n`` with ``n = n_det``; the rotation axis is at
  the middle of the slice, pixel coordinate ``((n - 1) / 2, (n - 1) / 2)``;
- a point at ``x`` (rightwards, columns) and ``y_up`` (upwards, decreasing row index)
  relative to the axis projects onto detector column ``center + x cos(theta) + y_up sin(theta)``
  (the convention of scikit-image's ``radon``/``iradon`` and of ASTRA's 2D parallel geometry).

``tomopy_convention=True`` follows TomoPy instead. The centre keeps its meaning (a 0-based
detector column; TomoPy's default centre ``n_det / 2`` is used when none is given, ours is
``(n_det - 1) / 2``), the rotation axis sits at pixel ``(n // 2 - 1, n // 2)`` of the slice
instead of the middle, and ``hann``/``hamming`` use TomoPy's window definitions (see
:mod:`tomochunk.recon.filters`). This geometry was fitted to TomoPy's stored gridrec outputs
(``tomopy/test/test_tomopy/test_data/gridrec_*.npy``: 16 angles, 48 pixels, centre 24) by
trying every grid origin in half-pixel steps, both handednesses and negated angles: it gives a
correlation of 0.988 inside the circle for shepp, ramlak and cosine, against 0.984 with the
origin at ``(24, 24)`` and 0.983 with our own convention at centre 23.5. The phantom is nearly
symmetric and these differences are small, so the test data support "TomoPy's grid is offset
by about half a pixel from ours, same handedness" but do not pin the row origin firmly.
TomoPy's values are also about 12% larger than ours on that 16-angle test (our scale is the
one checked against analytic disks).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import finufft
import numpy as np
import scipy.fft as sfft

from ..config import ReconConfig
from ..registry import ParamRangeError
from .fbp import FbpInputs, fbp_options, fbp_pipeline, prepare_fbp
from .geometry import (
    _Geometry,
    angle_weights,
    check_finite,
    circle_mask,
    default_center,
    grid_origin,
)

__all__ = [
    "angle_weights",
    "nufft_fbp",
    "reconstruct_block",
    "circle_mask",
    "default_center",
    "grid_origin",
    "check_finite",
    "prepare_fbp",
    "fbp_pipeline",
    "FbpInputs",
    "NumpyOps",
    "FinufftPlans",
    "NativeParams",
    "check_nufft_params",
]

#: Relative accuracy requested from finufft: the finest that keeps its kernel width at 8
#: with upsampfac 1.25 in single precision (1e-5 asks for 9 and finufft warns and uses 8).
DEFAULT_EPS = 2e-5
#: The NUFFT oversampling factors accepted (every finufft and cufinufft version has kernels
#: for both; finufft >= 2.5 would take others, which tomochunk does not test).
UPSAMPFACS = (1.25, 2.0)


def check_nufft_params(backend: str, eps: Any, upsampfac: Any, *,
                       allow_none: bool = False) -> None:
    """Refuse an ``eps`` or ``upsampfac`` of the ``native`` / ``cufinufft`` backend.

    ``allow_none``: ``upsampfac`` None (the library's own default) is accepted.

    Raises
    ------
    ParamRangeError
        One line naming ``recon.<backend>.<param>``, the range and why.
    """
    key = f"recon.{backend}"
    number = isinstance(eps, int | float) and not isinstance(eps, bool)
    if not (number and 1e-6 <= eps < 0.1):
        raise ParamRangeError(
            f"{key}.eps must be >= 1e-6 and < 0.1 (got {eps!r}): single-precision finufft "
            "is not more accurate than 1e-6, and at 0.1 or coarser the NUFFT error alone is "
            f"10% of the image; the default is {DEFAULT_EPS:g}",
            param="eps", rule="must be >= 1e-6 and < 0.1", value=eps)
    if upsampfac is None and allow_none:
        return
    if isinstance(upsampfac, bool) or upsampfac not in UPSAMPFACS:
        values = f"1.25, 2.0 or null ({backend}'s default, 2.0)" if allow_none else "1.25 or 2.0"
        raise ParamRangeError(
            f"{key}.upsampfac must be {values} (got {upsampfac!r}): the NUFFT "
            "oversampling factors (1.25 is faster, 2.0 is more accurate at small eps)",
            param="upsampfac", rule="must be 1.25 or 2.0", value=upsampfac)


@dataclass(frozen=True)
class NativeParams:
    """Parameters of the ``native`` backend (the ``recon: {native: {...}}`` section).

    Attributes
    ----------
    eps : float
        Relative accuracy requested from finufft, 1e-6 <= eps < 0.1 (2e-05: the finest that
        keeps the kernel width at 8 with upsampfac 1.25 in single precision).
    upsampfac : float
        finufft oversampling factor: 1.25 (fastest for these sizes) or 2.0.
    """

    eps: float = DEFAULT_EPS
    upsampfac: float = 1.25

    def __post_init__(self) -> None:
        check_nufft_params("native", self.eps, self.upsampfac)
        object.__setattr__(self, "upsampfac", float(self.upsampfac))


class NumpyOps:
    """The array operations of the gridding pipeline on the host: numpy and ``scipy.fft``.

    :func:`~tomochunk.recon.fbp.fbp_pipeline` is written against this small interface, so
    the GPU backend (:mod:`tomochunk.recon.cufinufft_backend`, torch on CUDA) shares every
    step but the array module and the NUFFT call.
    """

    def __init__(self, workers: int):
        self.workers = int(workers)

    def asarray(self, a: np.ndarray) -> Any:
        return a

    def to_host(self, a: Any) -> np.ndarray:
        return np.asarray(a)

    def empty(self, shape: tuple[int, ...]) -> Any:
        return np.empty(shape, dtype=np.float32)

    def rfft(self, a: Any, n: int) -> Any:
        return sfft.rfft(a, n=n, axis=-1, workers=self.workers)

    def irfft(self, a: Any, n: int) -> Any:
        return sfft.irfft(a, n=n, axis=-1, workers=self.workers)

    def fft(self, a: Any) -> Any:
        return sfft.fft(a, axis=-1, workers=self.workers, overwrite_x=True)

    def concat(self, parts: list[Any]) -> Any:
        return np.concatenate(parts, axis=-1)

    def pack(self, q: Any, n_rows: int) -> Any:
        """``(angle, row, L)`` real -> ``(pair, angle, L)`` complex, rows ``2i + 1`` imaginary."""
        n_pairs = (n_rows + 1) // 2
        packed = np.zeros((n_pairs, q.shape[0], q.shape[-1]), dtype=np.complex64)
        packed.real = np.moveaxis(q[:, 0::2, :], 1, 0)
        if n_rows > 1:
            packed.imag[: n_rows // 2] = np.moveaxis(q[:, 1::2, :], 1, 0)
        return packed

    def contiguous(self, a: Any) -> Any:
        return np.ascontiguousarray(a)


class FinufftPlans:
    """Type-1 ``finufft`` plans of one geometry, one per batch size (the native NUFFT)."""

    def __init__(self, geo: _Geometry, eps: float, upsampfac: float, workers: int):
        self.geo, self.eps, self.upsampfac, self.workers = geo, eps, upsampfac, workers
        self.plans: dict[int, finufft.Plan] = {}

    def __call__(self, coeffs: np.ndarray) -> np.ndarray:
        nt = coeffs.shape[0]
        if nt not in self.plans:
            plan = finufft.Plan(
                1,
                (self.geo.n, self.geo.n),
                n_trans=nt,
                eps=max(self.eps, 1e-6),
                isign=1,
                dtype="complex64",
                nthreads=self.workers,
                upsampfac=self.upsampfac,
            )
            plan.setpts(self.geo.x1, self.geo.x2)
            self.plans[nt] = plan
        return self.plans[nt].execute(coeffs)


def nufft_fbp(
    sino: np.ndarray,
    theta: np.ndarray,
    center: float | np.ndarray | None = None,
    *,
    n: int | None = None,
    filter: str = "shepp",
    filter_cutoff: float = 1.0,
    filter_order: int = 8,
    pad: str = "zero",
    circle: bool = False,
    tomopy_convention: bool = False,
    eps: float = DEFAULT_EPS,
    nthreads: int | None = None,
    upsampfac: float = 1.25,
) -> np.ndarray:
    """Reconstruct a block of slices by Fourier-gridding FBP (type-1 NUFFT).

    Parameters
    ----------
    sino : ndarray, shape (n_angles, n_rows, n_det) or (n_angles, n_det)
        Line integrals of the linear attenuation (``-log`` of the normalised transmission),
        in pixel units.
    theta : ndarray, shape (n_angles,)
        Projection angles in radians, any order, any range.
    center : float or ndarray of shape (n_rows,), optional
        Rotation axis as a 0-based detector column (see the module docstring); one value per
        row is allowed. Default: :func:`default_center`.
    n : int, optional
        Side of the output slices (default ``n_det``).
    filter, filter_cutoff, filter_order
        Filter name and parameters, see :mod:`tomochunk.recon.filters`.
    pad : {"zero", "edge", "none"}
        Padding of the detector rows before filtering to twice their length; ``edge``
        repeats the border values (local / ROI tomography, object wider than the detector).
    circle : bool
        Zero the pixels outside the inscribed circle (and spend less work on the corners).
    tomopy_convention : bool
        Follow TomoPy's grid origin, orientation and hann/hamming windows.
    eps : float
        Requested relative accuracy of the NUFFT (>= 1e-6 in single precision).
    nthreads : int, optional
        Threads for finufft and the FFTs (default: all cores).
    upsampfac : float
        finufft oversampling factor (1.25 is fastest for these sizes, 2.0 also valid).

    Returns
    -------
    ndarray, shape (n_rows, n, n) (or (n, n) for a 2D sinogram), float32
        Linear attenuation per pixel.

    Examples
    --------
    >>> import numpy as np
    >>> theta = np.linspace(0, np.pi, 90, endpoint=False)
    >>> sino = np.ones((90, 1, 33), np.float32)
    >>> nufft_fbp(sino, theta).shape
    (1, 33, 33)
    """
    inp = prepare_fbp(
        sino,
        theta,
        center,
        n=n,
        filter=filter,
        filter_cutoff=filter_cutoff,
        filter_order=filter_order,
        pad=pad,
        circle=circle,
        tomopy_convention=tomopy_convention,
    )
    workers = int(nthreads or os.cpu_count() or 1)
    return fbp_pipeline(inp, NumpyOps(workers), FinufftPlans(inp.geo, eps, upsampfac, workers))


def reconstruct_block(
    sino_block: np.ndarray,
    theta: np.ndarray,
    center: float | np.ndarray,
    config: ReconConfig,
    *,
    nthreads: int | None = None,
) -> np.ndarray:
    """The ``native`` backend: :func:`nufft_fbp` with the options of a :class:`ReconConfig`
    and its ``native`` parameters (:class:`NativeParams`: ``eps``, ``upsampfac``)."""
    own = config.params_of("native")
    return nufft_fbp(sino_block, theta, center, nthreads=nthreads, eps=own.eps,
                     upsampfac=own.upsampfac, **fbp_options(config))
