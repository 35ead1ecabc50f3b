"""BM4D (Mäkinen, Azzari & Foi 2020; ``bm4d`` on PyPI, non-commercial licence) on the full
reconstruction, with the noise sigma the benchmark measured from the split difference.

Run in benchmarks/peers/.venv:  python run_bm4d.py IN.npz OUT.npy --sigma S [--threads N]
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--sigma", type=float, required=True)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    import bm4d
    import numpy as np
    from peer_io import Clock, load, save

    data = load(args.input)
    clock = Clock()
    out = bm4d.bm4d(data["full"].astype(np.float64), sigma_psd=args.sigma)
    save(args.output, out, {"method": "bm4d", "sigma": args.sigma, **clock.lap(),
                            "bm4d_version": getattr(bm4d, "__version__", "?")})


if __name__ == "__main__":
    main()
