"""Strong and weak scaling of reconstruction, chunked inference and the median filter.

Runs each stage on LocalClusters of 1..N single-threaded worker processes (or on an existing
cluster via --scheduler-file, e.g. a SLURM allocation) and reports time, speedup T1/TN,
efficiency, peak memory per worker and chunk size. ``--memory-bound`` instead reconstructs and
median-filters a volume whose float32 size exceeds the memory limit given to the workers and
reports their peak memory.

    python benchmarks/scaling.py [--quick] [--workers 1,2]
    python benchmarks/scaling.py --memory-bound --worker-memory 1GiB --slices 768 --size 1024
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

import tomochunk as tc  # noqa: E402
from tomochunk.io import store  # noqa: E402

PRE = tc.PreprocessConfig(stripe="none")  # centre found automatically (serial, on the client)


def _pre(args: argparse.Namespace, n_xy: int) -> tc.PreprocessConfig:
    """Preprocessing of the benchmark: ``--center fixed`` gives the phantom's known centre,
    so only the parallel part of the stage is timed (auto centre finding runs on the client)."""
    if args.center == "fixed":
        return tc.PreprocessConfig(stripe="none", center=(n_xy - 1) / 2)
    return PRE


def make_scan(tmp: Path, n_z: int, n_xy: int, n_angles: int, name: str = "scan.zarr") -> Path:
    """A simulated scan of ``n_z`` rows, built by tiling a smaller simulation along rows."""
    import dask.array as da
    import xarray as xr

    from tomochunk.phantom import ScanSpec, simulate_scan

    base_z = min(n_z, 16)
    scan, _ = simulate_scan(ScanSpec(n_z=base_z, n_xy=n_xy, n_angles=n_angles, photons=2000,
                                     seed=1, ring_defects=0, lattice=False))
    reps = -(-n_z // base_z)
    proj = da.concatenate([da.from_array(scan.projections.values, chunks=(-1, 4, -1))] * reps,
                          axis=1)[:, :n_z]
    flat = da.concatenate([da.from_array(scan.flat.values)] * reps, axis=1)[:, :n_z]
    dark = da.concatenate([da.from_array(scan.dark.values)] * reps, axis=1)[:, :n_z]
    ds = xr.Dataset(
        {"projections": (("angle", "row", "col"), proj.rechunk((-1, 4, -1))),
         "flat": (("flat", "row", "col"), flat.rechunk((-1, 4, -1))),
         "dark": (("dark", "row", "col"), dark.rechunk((-1, 4, -1)))},
        coords={"theta": ("angle", scan.theta.values)}, attrs={"source": "scaling benchmark"})
    path = tmp / name
    store.write_dataset(ds, path, label=f"writing {name}")
    return path


def make_model(tmp: Path, recon: Path) -> Path:
    from tomochunk.training.n2i import train

    path = tmp / "model"
    if not path.exists():
        train(recon, path, config=tc.TrainConfig(msd={"depth": 20}, context=5, patch_size=64,
                                                 batch_size=2, patches_per_epoch=4, epochs=1,
                                                 patience=None))
    return path


def run_stage(stage: str, n_workers: int, tmp: Path, scan: Path, recon: Path | None,
              model: Path | None, memory_limit: str = "auto", scheduler_file: str | None = None,
              rows_per_block: int = 4, chunk_z: int = 8) -> dict:
    from tomochunk.filters import apply_filter
    from tomochunk.infer import denoise
    from tomochunk.recon.volume import reconstruct
    from tomochunk.runtime.cluster import connect

    out = tmp / f"{stage}-{n_workers}-{time.time_ns()}.zarr"
    ccfg = tc.ClusterConfig(n_workers=n_workers, threads_per_worker=1,
                            memory_limit=memory_limit, scheduler_file=scheduler_file)
    with connect(ccfg) as client:
        client.wait_for_workers(n_workers)
        with worker_peak_memory(client) as peaks:
            t0 = time.perf_counter()
            if stage == "recon":
                reconstruct(scan, out, preprocess=PRE,
                            config=tc.ReconConfig(rows_per_block=rows_per_block))
                chunk = f"{rows_per_block} rows"
            elif stage == "inference":
                denoise(recon, model, out, config=tc.DenoiseConfig(chunk_z=chunk_z))
                chunk = f"{chunk_z} slices"
            else:
                apply_filter(recon, out, method="median",
                             config=tc.FilterConfig(radius=2, chunk_z=chunk_z))
                chunk = f"{chunk_z} slices"
            seconds = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    peak = max(peaks.values()) if peaks else 0
    return {"stage": stage, "workers": n_workers, "seconds": seconds,
            "peak_mem_per_worker_mib": peak / 2**20, "chunk": chunk}


def scaling(args: argparse.Namespace) -> None:
    workers = [int(w) for w in args.workers.split(",")]
    n_z, n_xy, n_ang = (16, 128, 180) if args.quick else (args.slices, args.size, args.angles)
    global PRE
    PRE = _pre(args, n_xy)
    tmp = Path(tempfile.mkdtemp(prefix="tc-scaling-", dir=args.tmp))
    rows = []
    try:
        # strong scaling: one volume, 1..N workers
        scan = make_scan(tmp, n_z, n_xy, n_ang)
        from tomochunk.recon.volume import reconstruct

        recon = tmp / "recon.zarr"
        reconstruct(scan, recon, preprocess=PRE, config=tc.ReconConfig(rows_per_block=4))
        model = make_model(tmp, recon)
        for stage in args.stages.split(","):
            base = None
            for n in workers:
                r = run_stage(stage, n, tmp, scan, recon, model,
                              scheduler_file=args.scheduler_file)
                base = base or r["seconds"] * workers[0]
                r.update(kind="strong", slices=n_z, size=n_xy,
                         speedup=base / r["seconds"] / workers[0] if n else 1.0)
                r["efficiency"] = r["speedup"] / (n / workers[0])
                rows.append(r)
                print(table([r], COLS), flush=True)
        # weak scaling: n_z slices per worker
        for stage in args.stages.split(","):
            base = None
            for n in workers:
                scan_n = make_scan(tmp, n_z * n, n_xy, n_ang, name=f"scan-{n}.zarr")
                recon_n = tmp / f"recon-{n}.zarr"
                if stage != "recon":
                    reconstruct(scan_n, recon_n, preprocess=PRE,
                                config=tc.ReconConfig(rows_per_block=4))
                r = run_stage(stage, n, tmp, scan_n, recon_n, model,
                              scheduler_file=args.scheduler_file)
                base = base or r["seconds"]
                r.update(kind="weak", slices=n_z * n, size=n_xy, speedup=base / r["seconds"])
                r["efficiency"] = r["speedup"]
                rows.append(r)
                print(table([r], COLS), flush=True)
                shutil.rmtree(recon_n, ignore_errors=True)
                shutil.rmtree(scan_n, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(table(rows, COLS))
    print("\nspeedup = T1/TN (strong; efficiency = speedup/N); weak: T1/TN with N x the volume")
    stages = args.stages.split(",")
    name = "scaling" + ("-quick" if args.quick else "")
    if set(stages) != {"recon", "inference", "median"}:  # a partial run keeps the full one
        name += "-" + "-".join(stages)
    write_json(name, {"rows": rows, "args": vars(args)})


def memory_bound(args: argparse.Namespace) -> None:
    """Reconstruct + median-filter a volume larger than the workers' memory limit."""
    from tomochunk.filters import apply_filter
    from tomochunk.recon.volume import reconstruct
    from tomochunk.runtime.cluster import connect

    tmp = Path(tempfile.mkdtemp(prefix="tc-membound-", dir=args.tmp))
    n_z, n_xy, n_ang = args.slices, args.size, args.angles
    global PRE
    PRE = _pre(args, n_xy)
    vol_gib = n_z * n_xy * n_xy * 4 / 2**30
    print(f"volume {n_z}x{n_xy}x{n_xy} float32 = {vol_gib:.2f} GiB (full), "
          f"{vol_gib * 3:.2f} GiB with the 2 splits; workers limited to {args.worker_memory}",
          flush=True)
    rows = []
    try:
        scan = make_scan(tmp, n_z, n_xy, n_ang)
        recon = tmp / "recon.zarr"
        ccfg = tc.ClusterConfig(n_workers=args.n_workers, threads_per_worker=1,
                                memory_limit=args.worker_memory)
        with connect(ccfg) as client:
            client.wait_for_workers(args.n_workers)
            with worker_peak_memory(client) as peaks:
                t0 = time.perf_counter()
                reconstruct(scan, recon, preprocess=PRE, config=tc.ReconConfig(rows_per_block=4))
                secs = time.perf_counter() - t0
            rows.append({"stage": "recon", "workers": args.n_workers, "seconds": secs,
                         "peak_mem_per_worker_mib": max(peaks.values()) / 2**20,
                         "chunk": "4 rows", "volume_gib": vol_gib * 3})
            print(table(rows[-1:]), flush=True)
            with worker_peak_memory(client) as peaks:
                t0 = time.perf_counter()
                apply_filter(recon, tmp / "median.zarr", method="median",
                             config=tc.FilterConfig(radius=2, chunk_z=8))
                secs = time.perf_counter() - t0
            rows.append({"stage": "median", "workers": args.n_workers, "seconds": secs,
                         "peak_mem_per_worker_mib": max(peaks.values()) / 2**20,
                         "chunk": "8 slices", "volume_gib": vol_gib})
        disk = sum(p.stat().st_size for p in recon.rglob("*") if p.is_file()) / 2**30
        print(table(rows, ["stage", "workers", "seconds", "peak_mem_per_worker_mib", "chunk",
                           "volume_gib"]))
        print(f"recon.zarr on disk: {disk:.2f} GiB (compressed); volume_gib = float32 size of "
              "what the stage wrote")
        write_json("memory_bound", {"rows": rows, "recon_on_disk_gib": disk,
                                    "worker_memory": args.worker_memory, "args": vars(args)})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


COLS = ["kind", "stage", "workers", "slices", "size", "seconds", "speedup", "efficiency",
        "peak_mem_per_worker_mib", "chunk"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--stages", default="recon,inference,median")
    ap.add_argument("--slices", type=int, default=32)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--angles", type=int, default=360)
    ap.add_argument("--memory-bound", action="store_true")
    ap.add_argument("--worker-memory", default="1GiB")
    ap.add_argument("--n-workers", type=int, default=2)
    ap.add_argument("--tmp", default=None, help="scratch folder (default: system temp)")
    ap.add_argument("--center", choices=["auto", "fixed"], default="auto",
                    help="auto: find the centre in every run (serial); fixed: the known one")
    ap.add_argument("--scheduler-file", default=None,
                    help="run on an existing cluster (e.g. SLURM); --workers then names the "
                         "worker count(s) to wait for; scratch (--tmp) must be shared")
    args = ap.parse_args()
    np.seterr(all="ignore")
    if args.memory_bound:
        memory_bound(args)
    else:
        scaling(args)


if __name__ == "__main__":
    main()
