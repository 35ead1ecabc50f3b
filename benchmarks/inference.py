"""Chunked Noise2Inverse inference vs one whole-volume torch call; memory vs volume size.

Reports voxels/s of :func:`tomochunk.infer.denoise` (zarr in -> zarr out, halo-overlapped
z-chunks on a LocalCluster) against :func:`tomochunk.infer.denoise_array` with every slice in
one batch (one torch call per pairing k, in this process, same number of threads), after a
warm-up run (imports, the once-per-worker model load), the
overhead of chunking (goal <= 25 %), and the peak memory per worker when the volume is 4x
taller at the same ``chunk_z`` (goal <= 1.2x).

    python benchmarks/inference.py --quick
    python benchmarks/inference.py [--depth 100] [--slices 64] [--size 256] [--chunk-z 16]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, worker_peak_memory, write_json  # noqa: E402


def make_model(path: Path, depth: int, context: int, noise: float) -> object:
    import torch

    from tomochunk.nn.registry import build_network
    from tomochunk.training.modelfile import FORMAT_VERSION, TrainedModel

    torch.manual_seed(0)
    net = build_network("msd", context, 1, depth=depth)
    with torch.no_grad():
        net.final_weight.normal_(0, 0.1)
    meta = {
        "format_version": FORMAT_VERSION, "network": "msd",
        "network_params": {"depth": depth, "width": 1}, "in_channels": context,
        "context": context, "n_splits": 2, "strategy": "X:1", "angles_per_split": None,
        "filter": None, "pixel_size_um": None, "noise_sigma": noise,
        "norm": {"input": {"mean": 0.0, "std": 1.0}, "output": {"mean": 0.0, "std": 1.0}},
        "receptive_radius": int(net.receptive_radius), "train_config": {}, "recon_attrs": {},
        "tomochunk_version": "bench",
    }
    model = TrainedModel(net.eval(), meta)
    model.save(path)
    return model


def make_recon(path: Path, n_z: int, size: int, chunk_z: int, noise: float) -> np.ndarray:
    import dask.array as da
    import xarray as xr

    from tomochunk.io.store import write_dataset

    rng = np.random.default_rng(0)
    truth = np.zeros((n_z, size, size), np.float32)
    truth[:, size // 4: 3 * size // 4, size // 4: 3 * size // 4] = 1.0
    splits = np.stack([truth + rng.normal(0, noise, truth.shape) for _ in range(2)])
    splits = splits.astype(np.float32)
    ds = xr.Dataset({"full": (("z", "y", "x"), da.from_array(splits.mean(0),
                                                          chunks=(chunk_z, -1, -1))),
                     "split": (("split", "z", "y", "x"),
                               da.from_array(splits, chunks=(1, chunk_z, -1, -1)))})
    write_dataset(ds, path, label="writing bench recon")
    return splits


def size_arguments(doc: str) -> argparse.ArgumentParser:
    """The volume/network options shared by the inference benchmarks (``pyramid.py`` too)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    ap.add_argument("--depth", type=int, default=None)
    ap.add_argument("--slices", type=int, default=None)
    ap.add_argument("--size", type=int, default=None)
    ap.add_argument("--chunk-z", type=int, default=None)
    ap.add_argument("--context", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    return ap


def sizes(args: argparse.Namespace) -> tuple[int, int, int, int]:
    """(depth, slices, size, chunk_z): the given values, else the quick or full defaults."""
    return (args.depth or (10 if args.quick else 100), args.slices or (16 if args.quick else 64),
            args.size or (64 if args.quick else 256), args.chunk_z or (4 if args.quick else 16))


def main() -> None:
    args = size_arguments(__doc__).parse_args()
    depth, n_z, size, chunk_z = sizes(args)
    threads = args.workers  # the whole-volume call gets as many torch threads as workers

    import torch
    from distributed import Client, LocalCluster

    from tomochunk.infer import denoise, denoise_array

    tmp = Path(tempfile.mkdtemp(prefix="tc-bench-infer-"))
    rows = []
    try:
        model = make_model(tmp / "model", depth, args.context, 0.1)
        splits = make_recon(tmp / "recon.zarr", n_z, size, chunk_z, 0.1)
        make_recon(tmp / "recon4.zarr", 4 * n_z, size, chunk_z, 0.1)
        voxels = splits[0].size

        torch.set_num_threads(threads)
        denoise_array(splits[:, : args.context], model, batch_size=args.context)  # warm-up
        t0 = time.perf_counter()
        ref = denoise_array(splits, model, batch_size=n_z)  # one torch call per pairing
        t_whole = time.perf_counter() - t0
        rows.append({"mode": "whole volume, 1 torch call/k", "workers": 1, "threads": threads,
                     "seconds": t_whole, "voxels_per_s": voxels / t_whole,
                     "overhead": 0.0, "peak_mem_mib": float("nan")})

        for n_workers, nthreads in ((1, threads), (args.workers, 1)):
            with LocalCluster(n_workers=n_workers, threads_per_worker=nthreads,
                              processes=True, dashboard_address=":0") as cluster, \
                    Client(cluster) as client:
                # warm-up: imports, the per-worker model load and torch's first calls
                denoise(tmp / "recon.zarr", tmp / "model", tmp / "warm.zarr",
                        chunk_z=chunk_z, overwrite=True)
                with worker_peak_memory(client) as peaks:
                    t0 = time.perf_counter()
                    out = denoise(tmp / "recon.zarr", tmp / "model", tmp / "den.zarr",
                                  chunk_z=chunk_z, overwrite=True)
                    t = time.perf_counter() - t0
                err = float(np.abs(out.values - ref).max())
                rows.append({"mode": f"chunked z={chunk_z}, zarr->zarr", "workers": n_workers,
                             "threads": nthreads, "seconds": t, "voxels_per_s": voxels / t,
                             "overhead": t / t_whole - 1.0,
                             "peak_mem_mib": max(peaks.values()) / 2**20,
                             "max_abs_err": err})
                if n_workers == args.workers:
                    with worker_peak_memory(client) as peaks4:
                        t0 = time.perf_counter()
                        denoise(tmp / "recon4.zarr", tmp / "model", tmp / "den4.zarr",
                                chunk_z=chunk_z, overwrite=True)
                        t4 = time.perf_counter() - t0
                    rows.append({"mode": f"chunked z={chunk_z}, 4x slices", "workers": n_workers,
                                 "threads": nthreads, "seconds": t4,
                                 "voxels_per_s": 4 * voxels / t4,
                                 "overhead": t4 / (4 * t_whole) - 1.0,
                                 "peak_mem_mib": max(peaks4.values()) / 2**20})
        mem_ratio = rows[-1]["peak_mem_mib"] / rows[-2]["peak_mem_mib"]
        cols = ["mode", "workers", "threads", "seconds", "voxels_per_s", "overhead",
                "peak_mem_mib"]
        print(table(rows, cols))
        same_resources = rows[1]
        summary = {
            "overhead_same_threads": same_resources["overhead"],
            "goal_overhead": 0.25,
            "overhead_ok": same_resources["overhead"] <= 0.25,
            "peak_mem_ratio_4x": mem_ratio,
            "goal_mem_ratio": 1.2,
            "mem_ok": mem_ratio <= 1.2,
            "max_abs_err_chunked_vs_whole": max(r.get("max_abs_err", 0.0) for r in rows),
        }
        print(f"\noverhead of chunking (1 worker x {threads} threads vs whole): "
              f"{summary['overhead_same_threads']:+.1%} (goal <= +25%)")
        print(f"peak memory per worker, 4x slices / 1x: {mem_ratio:.2f} (goal <= 1.2)")
        path = write_json("inference", {
            "params": {"quick": args.quick, "depth": depth, "slices": n_z, "size": size,
                       "chunk_z": chunk_z, "context": args.context, "workers": args.workers},
            "rows": rows, "summary": summary})
        print(f"written {path}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
