"""One prepared GPU measurement run (issue 17): GPU against CPU in the same run, <= 8 min on one
H100/H200-class GPU.

Sections (each prints its rows as soon as it is done and rewrites the JSON, so a run cut short
still leaves its data; a section that fails records its error and the run goes on):

1. ``recon``: gridding FBP of a 1024^3 scan (1024 angles, full + 2 interleaved splits, as the
   ``recon`` stage computes them: the full volume is the mean of the splits) with the
   ``cufinufft`` backend, blocks of 64 rows; CPU ``native`` on 16 rows with every core,
   extrapolated linearly to 1024 rows (said in the row); the maximum GPU-CPU difference on
   those rows. Then 2048 x 2048 slices with 1500 angles (full + 2 splits) on 32 rows,
   extrapolated to 2048 rows (the issue's goal: <= 30 s). The sinogram is an analytic
   disk phantom plus Gaussian noise; every block reuses one host array (the host-to-device
   copy is timed, the generation is not).
2. ``train_throughput``: training steps (forward, backward, Adam) of MSD-100 and a UNet on
   256^2 patches with a 5-slice context, fp32 and bf16 autocast (where the network supports
   it), batch from free GPU memory (capped at 64): output Mvoxel/s.
3. ``time_to_min``: Noise2Inverse training (MSD-100, ``tomochunk.train``, in this process)
   on 128 x 1024^2 synthetic split volumes (random balls plus independent ramp-filtered
   Gaussian noise per split: FBP-like noise, not simulated projections) until the validation
   loss stops improving (patience 5) or 3 minutes pass; the time to the best epoch, and that
   time x 400/128 as a linear extrapolation to the paper's 400 slices (said in the row).
4. ``inference``: N2I inference (K = 2 pairings averaged) of 32 slices of 1024^2 with the
   model of section 3 on the GPU: output Mvoxel/s; the maximum GPU-CPU difference on 5 slices.

Install on a bare GPU machine (from the repository root)::

    pip install torch==2.13.0          # the default Linux wheel is a CUDA build
    pip install -e . cufinufft

Run::

    python benchmarks/gpu_check.py                  # writes benchmarks/results/gpu_check.json
    python benchmarks/gpu_check.py --cpu-smoke      # tiny sizes on CPU: exercises the code only

Without a CUDA GPU (and without ``--cpu-smoke``) it prints why and exits with status 2,
measuring nothing.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, machine, table  # noqa: E402

FULL = dict(n=1024, angles=1024, rpb=64, cpu_rows=16, big_n=2048, big_angles=1500, big_rows=32,
            patch=256, tp_seconds=8.0, tp_cap=64, msd_depth=100, unet_depth=4, unet_features=32,
            phantom=(128, 1024), train_minutes=3.0, patience=5, patches=512, infer_z=32,
            infer_cpu_z=5)
SMOKE = dict(n=48, angles=40, rpb=8, cpu_rows=4, big_n=64, big_angles=50, big_rows=4,
             patch=24, tp_seconds=0.5, tp_cap=4, msd_depth=4, unet_depth=2, unet_features=4,
             phantom=(14, 32), train_minutes=0.5, patience=2, patches=8, infer_z=6,
             infer_cpu_z=5)


class Run:
    """Collects the sections, prints each row as it comes and rewrites the JSON each time."""

    def __init__(self, out: Path, smoke: bool, budget_min: float = 8.0):
        self.out, self.smoke, self.budget_min = out, smoke, budget_min
        self.data: dict[str, Any] = {"benchmark": "gpu_check", "smoke": smoke,
                                     "machine": machine(), "sections": {}}
        self.t0 = time.perf_counter()

    def save(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.data["elapsed_s"] = round(time.perf_counter() - self.t0, 1)
        self.out.write_text(json.dumps(self.data, indent=2, default=float))

    def remaining_min(self) -> float:
        return self.budget_min - (time.perf_counter() - self.t0) / 60.0

    def section(self, name: str, fn: Callable[[], list[dict[str, Any]]]) -> None:
        if self.remaining_min() < 0.25:
            self.data["sections"][name] = {"error": "skipped: the time budget was spent"}
            print(f"\n== {name}: skipped, the time budget is spent", flush=True)
            self.save()
            return
        print(f"\n== {name} ({time.perf_counter() - self.t0:.0f} s into the run)", flush=True)
        t = time.perf_counter()
        try:
            rows = fn()
            entry: dict[str, Any] = {"rows": rows}
            columns = list(dict.fromkeys(k for r in rows for k in r))
            print(f"-- {name}: all rows", flush=True)
            print(table(rows, columns), flush=True)
        except Exception as exc:  # noqa: BLE001 - record it and go on with the next section
            entry = {"error": f"{type(exc).__name__}: {exc}",
                     "traceback": traceback.format_exc(limit=6)}
            print(f"   FAILED: {entry['error']}", flush=True)
        entry["seconds"] = round(time.perf_counter() - t, 1)
        self.data["sections"][name] = entry
        self.save()


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


# ----------------------------------------------------------------------------- 1. recon


def disk_sinogram(n_det: int, theta: np.ndarray, rows: int, seed: int = 0) -> np.ndarray:
    """``(angle, row, col)`` line integrals of 40 random disks (pixel units) plus noise."""
    rng = np.random.default_rng(seed)
    c = (n_det - 1) / 2.0
    s = np.arange(n_det) - c
    sino = np.zeros((theta.size, n_det), np.float64)
    for _ in range(40):
        r = rng.uniform(0.02, 0.12) * n_det
        x0, y0 = rng.uniform(-0.3, 0.3, 2) * n_det
        mu = rng.uniform(0.002, 0.01)
        s0 = x0 * np.cos(theta) + y0 * np.sin(theta)
        d2 = r * r - (s[None, :] - s0[:, None]) ** 2
        sino += 2 * mu * np.sqrt(np.clip(d2, 0, None))
    block = np.repeat(sino[:, None, :], rows, axis=1)
    block *= np.linspace(0.9, 1.1, rows)[None, :, None]
    block += rng.normal(0, 0.02 * sino.max(), block.shape)
    return block.astype(np.float32)


def recon_section(p: dict[str, Any], gpu_backend: str, smoke: bool) -> list[dict[str, Any]]:
    from tomochunk.config import ReconConfig
    from tomochunk.recon.volume import reconstruct_sinograms

    rows = []
    cores = os.cpu_count() or 1
    for n, n_ang, n_rows, cpu_rows in ((p["n"], p["angles"], p["n"], p["cpu_rows"]),
                                       (p["big_n"], p["big_angles"], p["big_rows"], 0)):
        theta = np.linspace(0, np.pi, n_ang, endpoint=False)
        rpb = min(p["rpb"], n_rows)
        block = disk_sinogram(n, theta, rpb)
        center = (n - 1) / 2.0
        gcfg = ReconConfig(splits=2, backend=gpu_backend, rows_per_block=rpb)
        reconstruct_sinograms(block[:, :2], theta, center, gcfg)  # warm-up (plans, context)
        t = time.perf_counter()
        first = None
        for _ in range(math.ceil(n_rows / rpb)):
            out = reconstruct_sinograms(block, theta, center, gcfg)
            first = out if first is None else first
        gpu_s = time.perf_counter() - t
        target_rows = n if cpu_rows else n  # the goal is a whole n^3 volume
        row: dict[str, Any] = {
            "volume": f"{n}^3, {n_ang} angles", "gpu_backend": gpu_backend,
            "gpu_rows": n_rows, "gpu_s_measured": gpu_s,
            "gpu_s_whole_volume": gpu_s * target_rows / n_rows,
            "gpu_extrapolated": n_rows != target_rows,
        }
        if cpu_rows:
            ccfg = ReconConfig(splits=2, backend="native", threads=cores)
            t = time.perf_counter()
            cpu = reconstruct_sinograms(block[:, :cpu_rows], theta, center, ccfg)
            cpu_s = time.perf_counter() - t
            assert first is not None
            diff = float(np.abs(first[:, :cpu_rows] - cpu).max())
            scale = float(np.abs(cpu).max())
            row.update({
                "cpu_rows": cpu_rows, "cpu_threads": cores, "cpu_s_measured": cpu_s,
                "cpu_s_whole_volume_extrapolated": cpu_s * n / cpu_rows,
                "speedup": (cpu_s * n / cpu_rows) / (gpu_s * n / n_rows),
                "max_abs_diff_gpu_cpu": diff, "max_rel_diff_gpu_cpu": diff / scale,
            })
        rows.append(row)
        print(table([row]), flush=True)
    return rows


# ----------------------------------------------------------------------------- 2. throughput


def _time_steps(net: Any, opt: Any, x: Any, y: Any, seconds: float,
                device: str) -> tuple[int, float]:
    """Training steps for about ``seconds`` after two warm-up steps: (steps, seconds)."""
    import torch

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.mse_loss(net(x), y).backward()
        opt.step()

    for _ in range(2):
        step()
    _sync(device)
    n_steps, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds or n_steps < 2:
        step()
        n_steps += 1
        if n_steps % 4 == 0:
            _sync(device)
    _sync(device)
    return n_steps, time.perf_counter() - t


def throughput_section(p: dict[str, Any], device: str) -> list[dict[str, Any]]:
    import torch

    from tomochunk.nn.registry import build_network
    from tomochunk.training.cuda import AutocastModule, autocast_error, max_batch_size

    dev = torch.device(device)
    rows = []
    nets = {"msd": dict(depth=p["msd_depth"], width=1),
            "unet": dict(depth=p["unet_depth"], features=p["unet_features"])}
    for name, params in nets.items():
        for prec in ("fp32", "bf16"):
            torch.manual_seed(0)
            base = build_network(name, 5, 1, **params)
            dtype = torch.bfloat16 if prec == "bf16" else None
            row: dict[str, Any] = {"network": f"{name}-{params['depth']}", "precision": prec,
                                   "patch": p["patch"]}
            if dtype is not None:
                err = autocast_error(base, 5, dev)
                if err is not None:
                    row["note"] = f"not supported: {err[:60]}"
                    rows.append(row)
                    print(table([row]), flush=True)
                    continue
            net = AutocastModule(base.to(dev), dtype, channels_last=dev.type == "cuda")
            if dev.type == "cuda":
                batch = max_batch_size(net, 5, p["patch"], dev, cap=p["tp_cap"])
            else:
                batch = p["tp_cap"]
            opt = torch.optim.Adam(net.parameters(), lr=1e-4)
            x = torch.randn(batch, 5, p["patch"], p["patch"], device=dev)
            y = torch.randn(batch, 1, p["patch"], p["patch"], device=dev)

            n_steps, dt = _time_steps(net, opt, x, y, p["tp_seconds"], device)
            row.update({"batch": batch, "steps": n_steps, "step_ms": 1e3 * dt / n_steps,
                        "train_mvoxel_s": batch * p["patch"] ** 2 * n_steps / dt / 1e6})
            rows.append(row)
            print(table([row]), flush=True)
            del net, opt, x, y
            if dev.type == "cuda":
                torch.cuda.empty_cache()
    return rows


# ----------------------------------------------------------------------------- 3. + 4.


def synthetic_splits(nz: int, n: int, device: str, seed: int = 0) -> np.ndarray:
    """``(2, nz, n, n)`` float32: random balls plus independent ramp-filtered noise per split."""
    import torch

    g = torch.Generator(device=device).manual_seed(seed)
    dev = torch.device(device)
    truth = torch.zeros(nz, n, n, device=dev)
    zz = torch.arange(nz, device=dev)[:, None, None].float()
    yy = torch.arange(n, device=dev)[None, :, None].float()
    xx = torch.arange(n, device=dev)[None, None, :].float()
    for _ in range(300):
        c = torch.rand(3, generator=g, device=dev) * torch.tensor([nz, n, n], device=dev)
        r = float(2 + torch.rand(1, generator=g, device=dev) * n / 16)
        truth += ((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 < r * r).float() * 0.2
    fy = torch.fft.fftfreq(n, device=dev)[:, None]
    fx = torch.fft.fftfreq(n, device=dev)[None, :]
    ramp = torch.sqrt(fy**2 + fx**2)
    out = []
    for _ in range(2):
        noise = torch.randn(nz, n, n, generator=g, device=dev)
        noise = torch.fft.ifft2(torch.fft.fft2(noise) * ramp).real
        noise *= 0.5 / noise.std()
        out.append((truth + noise).cpu().numpy())
    return np.stack(out).astype(np.float32)


def train_section(p: dict[str, Any], device: str, model_dir: Path,
                  holder: dict[str, Any]) -> list[dict[str, Any]]:
    import xarray as xr

    import tomochunk as tc

    nz, n = p["phantom"]
    t = time.perf_counter()
    splits = synthetic_splits(nz, n, device)
    gen_s = time.perf_counter() - t
    holder["splits"] = splits
    ds = xr.Dataset({"split": (("split", "z", "y", "x"), splits),
                     "full": (("z", "y", "x"), splits.mean(axis=0))},
                    attrs={"n_splits": 2, "angles_per_split": 750, "filter": "shepp"})
    cfg = tc.TrainConfig(network="msd", msd={"depth": p["msd_depth"]}, context=5,
                         patch_size=p["patch"], batch_size=8, patches_per_epoch=p["patches"],
                         epochs=1000, patience=p["patience"], max_minutes=p["train_minutes"],
                         device=device, precision="auto", seed=0,
                         threads=None if device != "cpu" else 1)
    t = time.perf_counter()
    model = tc.train(ds, model_dir, config=cfg)
    wall = time.perf_counter() - t
    hist = model.history or {}
    epochs = hist.get("epochs", [])
    best = int(hist.get("best_epoch") or 0)
    to_best = float(sum(e["seconds"] for e in epochs if e["epoch"] <= best))
    holder["model_dir"] = model_dir
    return [{
        "data": f"{nz}x{n}^2 synthetic splits (balls + ramp-filtered noise)",
        "network": f"msd-{p['msd_depth']}", "batch": cfg.batch_size,
        "patches_per_epoch": cfg.patches_per_epoch, "epochs_run": len(epochs),
        "best_epoch": best, "stopped": hist.get("stopped"),
        "minimum_reached": hist.get("stopped") == "early_stop",
        "s_to_best_epoch": to_best, "train_wall_s": wall, "data_gen_s": gen_s,
        "s_to_best_400_slices_extrapolated_linear": to_best * 400 / nz,
    }]


def inference_section(p: dict[str, Any], device: str, holder: dict[str, Any]
                      ) -> list[dict[str, Any]]:
    import torch

    from tomochunk.infer import denoise_array
    from tomochunk.training import load_model

    if "model_dir" not in holder:
        raise RuntimeError("no model: the training section did not finish")
    splits = holder["splits"]
    z = min(p["infer_z"], splits.shape[1])
    part = np.ascontiguousarray(splits[:, :z])
    gm = load_model(holder["model_dir"], device=device)
    denoise_array(part[:, :5], gm, batch_size=4)  # warm-up
    _sync(device)
    t = time.perf_counter()
    denoise_array(part, gm, batch_size=4)
    _sync(device)
    dt = time.perf_counter() - t
    vox = part[0].size
    rows = [{"network": f"msd-{p['msd_depth']}", "device": device, "slices": z,
             "size": f"{part.shape[2]}^2", "pairings_K": 2, "seconds": dt,
             "denoised_mvoxel_s": vox / dt / 1e6,
             "network_mvoxel_s": 2 * vox / dt / 1e6}]
    print(table(rows), flush=True)
    zc = min(p["infer_cpu_z"], z)
    torch.set_num_threads(os.cpu_count() or 1)
    cm = load_model(holder["model_dir"], device="cpu")
    t = time.perf_counter()
    cpu = denoise_array(part[:, :zc], cm, batch_size=1)
    cpu_s = time.perf_counter() - t
    # the same sub-volume on the GPU (its end slices mirror the context, unlike in ``den``)
    diff = float(np.abs(denoise_array(part[:, :zc], gm, batch_size=4) - cpu).max())
    rows.append({"network": f"msd-{p['msd_depth']}", "device": "cpu", "slices": zc,
                 "size": f"{part.shape[2]}^2", "pairings_K": 2, "seconds": cpu_s,
                 "denoised_mvoxel_s": part[0, :zc].size / cpu_s / 1e6,
                 "max_abs_diff_gpu_cpu": diff,
                 "max_rel_diff_gpu_cpu": diff / float(np.abs(cpu).max())})
    return rows


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu-smoke", action="store_true",
                    help="tiny sizes on CPU (native stands in for cufinufft): code paths only")
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON path (default benchmarks/results/gpu_check[-smoke].json)")
    ap.add_argument("--skip", default="", help="comma-separated sections to skip")
    ap.add_argument("--budget-min", type=float, default=7.5,
                    help="wall-clock budget; training is shortened and late sections skipped "
                         "to keep to it")
    args = ap.parse_args(argv)

    import torch

    smoke = args.cpu_smoke
    if not smoke and not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA GPU here (torch "
              f"{torch.__version__}, CUDA build: {torch.version.cuda}); nothing measured. Run "
              "it on a GPU machine after 'pip install torch==2.13.0 && pip install -e . "
              "cufinufft', or use --cpu-smoke to exercise the code paths.", file=sys.stderr)
        return 2
    from tomochunk.recon import RECONSTRUCTORS

    if not smoke and not RECONSTRUCTORS.available()["cufinufft"]:
        print("gpu_check: cufinufft is not importable (pip install cufinufft); the recon "
              "section will record the error", file=sys.stderr)
    p = SMOKE if smoke else FULL
    device = "cpu" if smoke else "cuda"
    torch.set_num_threads(1 if smoke else (os.cpu_count() or 1))
    out = args.out or RESULTS / ("gpu_check-smoke.json" if smoke else "gpu_check.json")
    run = Run(out, smoke, args.budget_min)
    run.data["environment"] = {
        "torch": torch.__version__, "torch_cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "gpu_memory_gib": (round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1)
                           if torch.cuda.is_available() else None),
        "backends": RECONSTRUCTORS.available(), "sizes": p,
    }
    run.save()
    print(f"gpu_check{' (CPU smoke: sizes are tiny, numbers mean nothing)' if smoke else ''}: "
          f"{run.data['environment']['gpu'] or 'no GPU'}; JSON -> {out}", flush=True)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    holder: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        if "recon" not in skip:
            run.section("recon", lambda: recon_section(
                p, "native" if smoke else "cufinufft", smoke))
        if "train_throughput" not in skip:
            run.section("train_throughput", lambda: throughput_section(p, device))
        if "time_to_min" not in skip:
            # leave about 1.5 minutes for the data, the validation passes and inference
            minutes = min(p["train_minutes"], max(0.2, run.remaining_min() - 1.5))
            run.section("time_to_min", lambda: train_section(
                {**p, "train_minutes": minutes}, device, Path(tmp) / "model", holder))
        if "inference" not in skip:
            run.section("inference", lambda: inference_section(p, device, holder))
    failed = [k for k, v in run.data["sections"].items() if "error" in v]
    print(f"\ndone in {time.perf_counter() - run.t0:.0f} s; JSON: {out}"
          + (f"; FAILED sections: {', '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
