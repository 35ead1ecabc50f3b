"""Cost of the NGFF pyramid on the denoise stage (issue 15; goal <= 20 %).

``tomochunk.infer.denoise`` writes ``denoised.zarr`` and, before marking it complete, its
2x mean pyramid (:mod:`tomochunk.io.pyramid`). This script times the whole denoise call and,
on the same cluster, the pyramid step alone (``write_pyramid`` re-run on the written store,
the same work the stage did), and reports the pyramid's share: pyramid / (denoise - pyramid).
Same volume and model as ``benchmarks/inference.py``; best of ``--repeat`` runs each.

    python benchmarks/pyramid.py --quick
    python benchmarks/pyramid.py [--depth 100] [--slices 64] [--size 256] [--chunk-z 16]
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, write_json  # noqa: E402
from inference import make_model, make_recon, size_arguments, sizes  # noqa: E402


def main() -> None:
    ap = size_arguments(__doc__)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    depth, n_z, size, chunk_z = sizes(args)

    from distributed import Client, LocalCluster

    from tomochunk.infer import denoise
    from tomochunk.io.pyramid import level_count, write_pyramid

    tmp = Path(tempfile.mkdtemp(prefix="tc-bench-pyramid-"))
    try:
        make_model(tmp / "model", depth, args.context, 0.1)
        make_recon(tmp / "recon.zarr", n_z, size, chunk_z, 0.1)
        levels = level_count((n_z, size, size))
        with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                          dashboard_address=":0") as cluster, Client(cluster):
            denoise(tmp / "recon.zarr", tmp / "model", tmp / "warm.zarr", chunk_z=chunk_z)
            t_stage, t_pyr = [], []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                denoise(tmp / "recon.zarr", tmp / "model", tmp / "den.zarr", chunk_z=chunk_z,
                        overwrite=True)
                t_stage.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                paths = write_pyramid(str(tmp / "den.zarr"), "denoised")
                t_pyr.append(time.perf_counter() - t0)
        assert len(paths) == levels
        stage, pyr = min(t_stage), min(t_pyr)
        without = stage - pyr
        rows = [
            {"step": "denoise stage incl. pyramid", "seconds": stage, "ratio": stage / without},
            {"step": "  of which pyramid", "seconds": pyr, "ratio": pyr / without},
            {"step": "denoise stage without pyramid", "seconds": without, "ratio": 1.0},
        ]
        print(table(rows, ["step", "seconds", "ratio"]))
        overhead = pyr / without
        print(f"\npyramid ({levels} levels of {n_z}x{size}x{size}) adds {overhead:+.1%} to the "
              "denoise stage (goal <= +20%)")
        path = write_json("pyramid" if not args.quick else "pyramid-quick", {
            "params": {"quick": args.quick, "depth": depth, "slices": n_z, "size": size,
                       "chunk_z": chunk_z, "context": args.context, "workers": args.workers,
                       "levels": levels, "repeat": args.repeat},
            "rows": rows, "all_stage_s": t_stage, "all_pyramid_s": t_pyr,
            "summary": {"pyramid_overhead": overhead, "goal": 0.20, "ok": overhead <= 0.20}})
        print(f"written {path}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
