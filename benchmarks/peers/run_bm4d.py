"""BM4D (Mäkinen, Azzari & Foi 2020; ``bm4d`` on PyPI, non-commercial licence) on the full
reconstruction, with the noise sigma the benchmark measured from the split difference, or
with ``--psd`` the noise power spectrum measured from it.

Tomographic noise is not white: filtered back-projection ramps it up at high in-plane
frequencies. BM4D models correlated noise by its PSD (``sigma_psd`` as an array the size of
the volume, ``E|FFT(noise)|^2``, unnormalised, so white noise is ``size * sigma^2``). The
split difference ``(s0 - s1) / 2`` has the same noise as the full reconstruction
``(s0 + s1) / 2`` and no signal; its periodogram, averaged over the axial frequencies (the
slices are reconstructed independently, so the noise is white along z) and smoothed over
5 x 5 in-plane frequencies, is the PSD given to BM4D.

Run in benchmarks/peers/.venv:  python run_bm4d.py IN.npz OUT.npy --sigma S [--psd] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def split_psd(split: np.ndarray) -> np.ndarray:
    """BM4D's ``sigma_psd`` from the split pair ``(2, z, y, x)`` (see the module docstring)."""
    import numpy as np
    from scipy.ndimage import uniform_filter

    d = (split[0] - split[1]) / 2.0
    p = np.mean(np.abs(np.fft.fftn(d)) ** 2, axis=0, keepdims=True)
    p = uniform_filter(p, size=(1, 5, 5), mode="wrap")
    return np.broadcast_to(p, d.shape).copy()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--sigma", type=float, required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--psd", action="store_true",
                    help="the noise PSD of the split difference instead of a white sigma")
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import bm4d
    import numpy as np
    from peer_io import Clock, load, save

    data = load(args.input)
    clock = Clock()
    if not hasattr(np, "trapz"):  # bm4d's coloured-noise path calls np.trapz (gone in numpy 2.4)
        setattr(np, "trapz", np.trapezoid)  # noqa: B010 - the name ruff's NPY201 flags
    noise: float | np.ndarray = args.sigma
    if args.psd:
        noise = split_psd(data["split"].astype(np.float64))
    out = bm4d.bm4d(data["full"].astype(np.float64), sigma_psd=noise)
    save(args.output, out, {"method": "bm4d-psd" if args.psd else "bm4d", "sigma": args.sigma,
                            **clock.lap(),
                            "bm4d_version": getattr(bm4d, "__version__", "?")})


if __name__ == "__main__":
    main()
