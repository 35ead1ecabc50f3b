"""MSDNet on CPU: forward throughput and training step time / peak memory versus depth.

Compares :class:`tomochunk.nn.MSDNet` (channel buffer, blocked matrix products, custom
backward) with its naive peer :meth:`MSDNet.forward_reference` (``torch.cat`` per layer,
autograd) on the same weights in the same run:

* forward throughput (output voxels/s) of MSD-100 on a 5-channel (2.5D context) slice, in
  ``torch.no_grad`` mode, and the maximum absolute difference of the two outputs;
* training step time (forward + backward + Adam step) and peak RSS for depth 25/50/100, each
  measured in a fresh subprocess (RSS sampled every 2 ms), showing linear versus quadratic memory.

    python benchmarks/train.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, write_json  # noqa: E402

from tomochunk.nn import MSDNet  # noqa: E402

MIB = 2**20


def _net(depth: int, in_channels: int = 5, seed: int = 0) -> MSDNet:
    """MSDNet with random non-zero weights (the reference init zeroes the last layer)."""
    torch.manual_seed(seed)
    net = MSDNet(in_channels, 1, depth=depth)
    with torch.no_grad():
        net.final_weight.normal_(0, 0.1)
        for b in net.biases:
            b.normal_(0, 0.01)
    return net


def forward_throughput(size: int, repeats: int) -> dict:
    """Output voxels/s of MSD-100 on a (1, 5, size, size) input, ours versus naive.

    Best of ``repeats`` runs (``repeats // 2`` for the slow naive peer): on a shared machine
    the minimum is the least disturbed estimate.
    """
    net = _net(100)
    x = torch.randn(1, 5, size, size)
    with torch.no_grad():
        net(x)  # warm-up (allocator, BLAS)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            y = net(x)
            times.append(time.perf_counter() - t0)
        ref_times = []
        for _ in range(max(1, repeats // 2)):
            t0 = time.perf_counter()
            y_ref = net.forward_reference(x)
            ref_times.append(time.perf_counter() - t0)
        t_ref = min(ref_times)
    ours = min(times)
    vox = size * size
    return {
        "size": f"{size}x{size}x5",
        "ours_s": ours,
        "ours_Mvox_per_s": vox / ours / 1e6,
        "naive_s": t_ref,
        "naive_Mvox_per_s": vox / t_ref / 1e6,
        "speedup": t_ref / ours,
        "max_abs_diff": float((y - y_ref).abs().max()),
        "output_max_abs": float(y_ref.abs().max()),
        "threads": torch.get_num_threads(),
    }


class _PeakRSS:
    """Sample this process's RSS every ``interval`` seconds in a thread; keep the peak.

    (``ru_maxrss`` cannot be used: a forked child starts with its parent's peak.)
    """

    def __init__(self, interval: float = 0.002):
        self.proc = psutil.Process()
        self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._interval = interval

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            self._stop.wait(self._interval)

    def __enter__(self) -> _PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def _worker(impl: str, depth: int, size: int, batch: int, steps: int) -> None:
    """Subprocess body: time training steps and report peak RSS as JSON on stdout."""
    net = _net(depth)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.randn(batch, 5, size, size)
    target = torch.randn(batch, 1, size, size)
    base = psutil.Process().memory_info().rss
    times = []
    with _PeakRSS() as sampler:
        for _ in range(steps):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            y = net(x) if impl == "ours" else net.forward_reference(x)
            loss = torch.nn.functional.mse_loss(y, target)
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t0)
            del y, loss
    print(json.dumps({"step_s": min(times), "peak_rss": sampler.peak, "base_rss": base}))


def training_step(impl: str, depth: int, size: int, batch: int, steps: int) -> dict:
    """Run :func:`_worker` in a fresh process (its memory is this run's alone)."""
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        impl,
        str(depth),
        str(size),
        str(batch),
        str(steps),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    res = json.loads(out.strip().splitlines()[-1])
    buffer_mib = (5 + depth) * batch * size * size * 4 / MIB
    return {
        "impl": impl,
        "depth": depth,
        "patch": f"{batch}x{size}x{size}",
        "step_s": res["step_s"],
        "peak_rss_MiB": res["peak_rss"] / MIB,
        "train_mem_MiB": (res["peak_rss"] - res["base_rss"]) / MIB,
        "buffer_MiB": buffer_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI, busy machines)")
    parser.add_argument("--forward-only", action="store_true",
                        help="only the forward throughput (writes results/train_forward.json)")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        impl, *nums = args.worker
        _worker(impl, *map(int, nums))
        return

    # the goal is stated for 512^2 (smaller slices favour the naive peer's cache use)
    size, repeats = (512, 3) if args.quick else (512, 6)
    patch, batch, steps = (96, 2, 5) if args.quick else (256, 4, 5)
    fwd = forward_throughput(size, repeats)
    print("MSD-100 forward (no_grad, CPU)")
    print(table([fwd]))
    if args.forward_only:
        write_json("train_forward", {"forward": fwd, "goal": {
            "forward_speedup_min": 10.0,
            "met": fwd["speedup"] >= 10.0 and fwd["max_abs_diff"] < 1e-4}})
        return

    rows = []
    for depth in (25, 50, 100):
        for impl in ("ours", "naive"):
            rows.append(training_step(impl, depth, patch, batch, steps))
    print("\nTraining step (forward + backward + Adam), peak RSS sampled in a fresh process")
    print(table(rows))
    ours = {r["depth"]: r["train_mem_MiB"] for r in rows if r["impl"] == "ours"}
    naive = {r["depth"]: r["train_mem_MiB"] for r in rows if r["impl"] == "naive"}
    growth = {
        "ours_mem_ratio_100_over_50": ours[100] / ours[50],
        "naive_mem_ratio_100_over_50": naive[100] / naive[50],
    }
    print("\nmemory growth 50 -> 100 layers:", {k: round(v, 2) for k, v in growth.items()})
    path = write_json(
        "train",
        {
            "quick": args.quick,
            "forward": fwd,
            "training": rows,
            "memory_growth": growth,
            "goal": {
                "forward_speedup_min": 10.0,
                "max_abs_diff_max": 1e-4,
                "met": fwd["speedup"] >= 10.0 and fwd["max_abs_diff"] < 1e-4,
            },
        },
    )
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
