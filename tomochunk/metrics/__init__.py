"""Image-quality metrics: numpy in, numbers out (Flenner et al. 2022 and standard methods).

- :func:`cnr`, :func:`auto_masks`: contrast-to-noise ratio (Muhogora et al. 2008, Eq. 1).
- :func:`line_profile`, :func:`fit_peaks`, :class:`PeakFit`, :func:`summarize_fwhm`:
  profiles in any orientation and Gaussian FWHM of their peaks.
- :func:`psd_1d`: mean windowed row periodogram on a physical frequency axis.
- :func:`frc`, :func:`fsc`, :class:`FRCResult`: Fourier ring/shell correlation with the
  half-bit threshold (van Heel & Schatz 2005).
- :func:`difference_structure`: difference image and the fraction of it that is structure.
- :func:`psnr`, :func:`ssim`, :func:`affine_fit`: against a ground truth, with an optional
  least-squares affine fit.
- :func:`noise_from_halves`: noise per slice and as an ``xy`` map from two halves.
- :func:`lattice_contrast`, :func:`lattice_amplitude`, :func:`axial_frc`: resolution per axis
  (z against y) and the anisotropy ratio.
- :func:`truth_free_mse`, :class:`TruthFreeScore`: MSE against the signal from a held-out
  noisy reference (no truth needed).
- :mod:`tomochunk.metrics.segmentation`: Otsu labels, Dice/IoU per phase, porosity error.
"""

from .anisotropy import axial_frc, lattice_amplitude, lattice_contrast
from .cnr import auto_masks, cnr
from .difference import difference_structure
from .frc import FRCResult, frc, fsc, half_bit_threshold
from .noise import noise_from_halves
from .profiles import FWHM_PER_SIGMA, PeakFit, fit_peaks, line_profile, summarize_fwhm
from .psd import peak_frequency, psd_1d
from .quality import affine_fit, mse, psnr, ssim
from .truthfree import TruthFreeScore, truth_free_mse

__all__ = [
    "cnr",
    "auto_masks",
    "line_profile",
    "fit_peaks",
    "PeakFit",
    "summarize_fwhm",
    "FWHM_PER_SIGMA",
    "psd_1d",
    "peak_frequency",
    "frc",
    "fsc",
    "FRCResult",
    "half_bit_threshold",
    "difference_structure",
    "psnr",
    "ssim",
    "mse",
    "affine_fit",
    "noise_from_halves",
    "lattice_amplitude",
    "lattice_contrast",
    "axial_frc",
    "truth_free_mse",
    "TruthFreeScore",
]
