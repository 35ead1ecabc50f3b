"""Benchmark of the reconstruction engine (issue 3).

1. Per-slice time of the native finufft reconstructor, ASTRA's CPU FBP and scikit-image's
   ``iradon`` on the same analytic Shepp-Logan sinograms, with the same number of threads,
   and the accuracy of each against the phantom (relative L2 error and correlation inside
   the reconstruction circle). A peer is skipped when its predicted time exceeds the limit.
2. Scaling of the native per-slice cost with the slice size ``N`` (``N`` angles each):
   fitted exponent of ``t ~ N^p`` and ``t / (N^2 log N)``.
3. Peak memory (RSS) of a whole volume reconstruction (``tomochunk.recon.reconstruct`` from
   a Zarr scan to a Zarr store) with 64 and with 256 slices, each in a fresh process.

Usage::

    python benchmarks/recon.py --quick          # small sizes, a few minutes on a busy laptop
    python benchmarks/recon.py                  # 512/900, 1024/1800, 2048/1500 (the issue's)

Prints a table and writes ``benchmarks/results/recon.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Modified Shepp-Logan (Toft 1996): value, semi-axes a, b, centre x0, y0, angle (degrees).
_SHEPP = [
    (1.0, 0.69, 0.92, 0.0, 0.0, 0.0),
    (-0.8, 0.6624, 0.874, 0.0, -0.0184, 0.0),
    (-0.2, 0.11, 0.31, 0.22, 0.0, -18.0),
    (-0.2, 0.16, 0.41, -0.22, 0.0, 18.0),
    (0.1, 0.21, 0.25, 0.0, 0.35, 0.0),
    (0.1, 0.046, 0.046, 0.0, 0.1, 0.0),
    (0.1, 0.046, 0.046, 0.0, -0.1, 0.0),
    (0.1, 0.046, 0.023, -0.08, -0.605, 0.0),
    (0.1, 0.023, 0.023, 0.0, -0.606, 0.0),
    (0.1, 0.023, 0.046, 0.06, -0.605, 0.0),
]
MU = 0.01  # attenuation per pixel of the outer ellipse


def _ellipses(n: int) -> list[tuple[float, ...]]:
    r = 0.48 * n
    return [(MU * v, a * r, b * r, x * r, y * r, np.radians(p)) for v, a, b, x, y, p in _SHEPP]


def phantom_truth(n: int, sub: int = 2) -> np.ndarray:
    """Pixel-averaged phantom on our grid (x right, y up, axis at the slice middle)."""
    out = np.zeros((n, n))
    offs = (np.arange(sub) + 0.5) / sub - 0.5
    for dy in offs:
        for dx in offs:
            x = np.arange(n)[None, :] + dx - (n - 1) / 2
            y = (n - 1) / 2 - (np.arange(n)[:, None] + dy)
            for v, a, b, x0, y0, phi in _ellipses(n):
                c, s = np.cos(phi), np.sin(phi)
                u = (x - x0) * c + (y - y0) * s
                w = -(x - x0) * s + (y - y0) * c
                out += v * ((u / a) ** 2 + (w / b) ** 2 <= 1)
    return (out / sub**2).astype(np.float32)


def phantom_sinogram(n: int, theta: np.ndarray, sub: int = 4) -> np.ndarray:
    """Exact, detector-pixel-averaged line integrals (angle, det), axis at (n - 1) / 2."""
    s = (np.arange(n)[None, :] + ((np.arange(sub) + 0.5) / sub - 0.5)[:, None]).ravel()
    s = s - (n - 1) / 2
    sino = np.zeros((theta.size, s.size))
    for v, a, b, x0, y0, phi in _ellipses(n):
        tp = theta - phi
        r2 = (a * np.cos(tp)) ** 2 + (b * np.sin(tp)) ** 2
        sp = s[None, :] - (x0 * np.cos(theta) + y0 * np.sin(theta))[:, None]
        inside = np.clip(r2[:, None] - sp**2, 0, None)
        sino += 2 * v * a * b * np.sqrt(inside) / r2[:, None]
    return sino.reshape(theta.size, sub, n).mean(1).astype(np.float32)


def _accuracy(rec: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    n = truth.shape[0]
    y, x = np.mgrid[:n, :n] - (n - 1) / 2
    m = x**2 + y**2 < (0.47 * n) ** 2
    a, b = rec[m].astype(np.float64), truth[m].astype(np.float64)
    return {
        "rel_l2": float(np.linalg.norm(a - b) / np.linalg.norm(b)),
        "corr": float(np.corrcoef(a, b)[0, 1]),
        "scale": float((a @ b) / (b @ b)),
    }


def _native(sino: np.ndarray, theta: np.ndarray, threads: int, n_slices: int) -> tuple:
    from tomochunk.recon import nufft_fbp

    block = np.repeat(sino[:, None, :], n_slices, axis=1)
    t0 = time.perf_counter()
    rec = nufft_fbp(block, theta, (sino.shape[1] - 1) / 2, filter="shepp", nthreads=threads)
    return (time.perf_counter() - t0) / n_slices, rec[0]


def _astra(sino: np.ndarray, theta: np.ndarray, threads: int) -> tuple:
    from tomochunk.config import ReconConfig
    from tomochunk.recon.astra_backend import reconstruct_block

    t0 = time.perf_counter()
    rec = reconstruct_block(sino[:, None, :], theta, (sino.shape[1] - 1) / 2,
                            ReconConfig(filter="shepp"))
    return time.perf_counter() - t0, rec[0]


def _skimage(sino: np.ndarray, theta: np.ndarray, threads: int) -> tuple:
    from skimage.transform import iradon

    from tomochunk.recon.astra_backend import shift_rows

    n = sino.shape[1]
    # scikit-image puts the axis at pixel n // 2 of the detector and of the slice; ours is
    # at (n - 1) / 2: for even n shift the sinogram by +1/2 and the slice back by -1/2.
    even = n % 2 == 0
    data = shift_rows(sino, 0.5) if even else sino
    t0 = time.perf_counter()
    rec = iradon(data.T, np.degrees(theta), output_size=n, filter_name="shepp-logan",
                 circle=True)
    dt = time.perf_counter() - t0
    if even:
        from scipy.ndimage import fourier_shift

        rec = np.fft.ifft2(fourier_shift(np.fft.fft2(rec), (-0.5, -0.5))).real
    return dt, rec


def speed_table(sizes: list[tuple[int, int]], threads: int, limit_s: float,
                n_slices: int) -> list[dict]:
    rows = []
    last: dict[str, tuple[float, int, int]] = {}
    for n, n_ang in sizes:
        theta = np.linspace(0, np.pi, n_ang, endpoint=False)
        sino = phantom_sinogram(n, theta)
        truth = phantom_truth(n)
        for name, fn in (("native", None), ("astra", _astra), ("skimage", _skimage)):
            entry = {"method": name, "n": n, "angles": n_ang, "threads": threads}
            if name in last:
                t_prev, n_prev, a_prev = last[name]
                predicted = t_prev * (n / n_prev) ** 2 * (n_ang / a_prev)
                if predicted > limit_s:
                    entry.update(skipped=f"predicted {predicted:.0f} s > {limit_s:.0f} s")
                    rows.append(entry)
                    print(f"  {name:8s} {n:5d} {n_ang:5d}  skipped ({entry['skipped']})",
                          flush=True)
                    continue
            try:
                if name == "native":
                    _native(sino[:8], theta[:8], threads, 2)  # warm-up (imports, FFTW)
                    dt, rec = _native(sino, theta, threads, n_slices)
                else:
                    dt, rec = fn(sino, theta, threads)
            except ImportError as exc:
                entry.update(skipped=f"not installed: {exc}")
                rows.append(entry)
                continue
            last[name] = (dt, n, n_ang)
            entry.update(seconds_per_slice=dt, **_accuracy(rec, truth))
            rows.append(entry)
            print(f"  {name:8s} {n:5d} {n_ang:5d}  {dt:9.3f} s/slice  rel_l2 "
                  f"{entry['rel_l2']:.4f}  corr {entry['corr']:.4f}  scale "
                  f"{entry['scale']:.4f}", flush=True)
    return rows


def scaling(ns: list[int], threads: int, n_slices: int) -> dict:
    times = []
    for n in ns:
        theta = np.linspace(0, np.pi, n, endpoint=False)
        sino = phantom_sinogram(n, theta)
        _native(sino[:8], theta[:8], threads, 2)
        dt, _ = _native(sino, theta, threads, n_slices)
        times.append(dt)
        print(f"  native N={n:5d} angles={n:5d}: {dt:.4f} s/slice", flush=True)
    ns_a, t_a = np.array(ns, float), np.array(times)
    p = float(np.polyfit(np.log(ns_a), np.log(t_a), 1)[0])
    norm = t_a / (ns_a**2 * np.log2(ns_a))
    return {"n": ns, "angles": ns, "seconds_per_slice": times, "exponent": p,
            "t_over_n2logn_relative": (norm / norm[0]).tolist()}


def _make_scan(path: Path, n: int, n_slices: int) -> None:
    from tomochunk.io.ingest import from_arrays, ingest

    theta = np.linspace(0, np.pi, n, endpoint=False)
    sino = phantom_sinogram(n, theta)
    trans = np.exp(-sino)[:, None, :].repeat(n_slices, axis=1).astype(np.float32)
    ingest(from_arrays(trans, theta), path, rows_per_chunk=8)


def memory(n: int, slice_counts: list[int]) -> list[dict]:
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in slice_counts:
            scan = Path(tmp) / f"scan{s}.zarr"
            _make_scan(scan, n, s)
            cmd = [sys.executable, __file__, "--_memory-child", str(scan),
                   str(Path(tmp) / f"recon{s}.zarr")]
            t0 = time.perf_counter()
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            info = json.loads(res.stdout.strip().splitlines()[-1])
            info.update(slices=s, n=n, angles=n, wall_s=time.perf_counter() - t0)
            out.append(info)
            print(f"  volume {s:4d} slices of {n}^2: peak RSS {info['peak_rss_mb']:.0f} MiB "
                  f"(baseline after imports {info['baseline_rss_mb']:.0f} MiB), "
                  f"{info['recon_s']:.1f} s", flush=True)
    return out


def _memory_child(scan: str, out: str) -> None:
    import logging

    import psutil

    from tomochunk.recon import reconstruct

    logging.getLogger("tomochunk").setLevel(logging.WARNING)
    base = psutil.Process().memory_info().rss / 2**20
    t0 = time.perf_counter()
    reconstruct(scan, out, stripe="none", center="auto", rows_per_block=8)
    dt = time.perf_counter() - t0
    # VmHWM: this process image's peak (ru_maxrss would carry the forked parent's peak)
    peak = next(int(line.split()[1]) for line in open("/proc/self/status")
                if line.startswith("VmHWM:")) / 1024
    print(json.dumps({"peak_rss_mb": peak, "baseline_rss_mb": base, "recon_s": dt}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (CI / busy machines)")
    ap.add_argument("--threads", type=int, default=1,
                    help="threads for every method (ASTRA's CPU FBP uses one in any case)")
    ap.add_argument("--limit", type=float, default=None,
                    help="skip a peer predicted to take longer than this per slice (s)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "recon.json"))
    ap.add_argument("--memory-only", action="store_true",
                    help="only the volume peak-memory part; updates 'memory' in --out")
    ap.add_argument("--_memory-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._memory_child:
        _memory_child(*args._memory_child)
        return
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    if args.quick:
        sizes, limit, n_slices = [(256, 360), (512, 900)], args.limit or 30.0, 4
        ns, mem_n, mem_slices = [128, 256, 512], 128, [64, 256]
    else:
        sizes, limit, n_slices = [(512, 900), (1024, 1800), (2048, 1500)], args.limit or 120.0, 8
        ns, mem_n, mem_slices = [256, 512, 1024, 2048], 256, [64, 256]

    if args.memory_only:
        mem = memory(mem_n, mem_slices)
        result = json.loads(Path(args.out).read_text()) if Path(args.out).exists() else {}
        result["memory"] = mem
        Path(args.out).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.out}")
        return
    print(f"per-slice time and accuracy (threads={args.threads}):", flush=True)
    table = speed_table(sizes, args.threads, limit, n_slices)
    print("native scaling (angles = N):", flush=True)
    scale = scaling(ns, args.threads, n_slices)
    print("peak memory of a volume reconstruction:", flush=True)
    mem = memory(mem_n, mem_slices)

    print("\n| N | angles | method | s/slice | speed-up vs astra | rel. L2 | corr |")
    print("|---|---|---|---|---|---|---|")
    for n, a in sizes:
        ref = next((r for r in table if r["n"] == n and r["method"] == "astra"
                    and "seconds_per_slice" in r), None)
        for r in (r for r in table if r["n"] == n):
            if "seconds_per_slice" not in r:
                print(f"| {n} | {a} | {r['method']} | skipped: {r['skipped']} | | | |")
                continue
            sp = ref["seconds_per_slice"] / r["seconds_per_slice"] if ref else float("nan")
            print(f"| {n} | {a} | {r['method']} | {r['seconds_per_slice']:.3f} | {sp:.1f}x | "
                  f"{r['rel_l2']:.4f} | {r['corr']:.4f} |")
    print(f"\nnative per-slice exponent t ~ N^{scale['exponent']:.2f} (angles = N; "
          f"N^2 log N would give ~2.1-2.2); t/(N^2 log2 N) relative: "
          f"{', '.join(f'{v:.2f}' for v in scale['t_over_n2logn_relative'])}")
    print("peak RSS: " + ", ".join(f"{m['slices']} slices {m['peak_rss_mb']:.0f} MiB"
                                   for m in mem))
    result = {
        "benchmark": "recon",
        "quick": args.quick,
        "threads": args.threads,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "load_avg": os.getloadavg()},
        "speed": table,
        "scaling": scale,
        "memory": mem,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
