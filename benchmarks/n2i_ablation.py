"""Noise2Inverse ablation: what each training/inference choice gains for the same compute.

Every variant trains on the same project phantom (``tc.simulate_scan``, hole lattice, ring
defects, beam profile, Poisson noise), reconstructed with K=4 interleaved splits (K=2 variants
use the merged pairs, which are exactly the K=2 reconstructions). Each variant is scored
against the phantom's truth on the reconstruction's own grid (the rotation axis at
``(n-1)/2`` in both), with PSNR/SSIM inside the sample (truth > 0, after the least-squares
affine fit of :mod:`tomochunk.metrics.quality`), against the peer in the same run: BM4D when
``import bm4d`` works, else the 3D median (radius 2), and the unfiltered reconstruction.

Training cost is measured as **optimiser steps** (every variant gets the same number) and as
**CPU seconds** (``time.process_time`` with torch threads fixed to ``--threads``), because
the machine is shared and wall time is not reproducible. Variants whose step is more
expensive are also reported per CPU second.

    python benchmarks/n2i_ablation.py [--quick] [--steps N] [--threads T]

Writes a table and ``benchmarks/results/n2i_ablation.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, write_json  # noqa: E402

import tomochunk as tc  # noqa: E402
from tomochunk.config import PreprocessConfig, TrainConfig  # noqa: E402
from tomochunk.infer import denoise_array, merge_splits  # noqa: E402
from tomochunk.metrics.quality import psnr, ssim  # noqa: E402
from tomochunk.training.n2i import train  # noqa: E402


def phantom(n_z: int, n_xy: int, n_angles: int, seed: int) -> dict[str, Any]:
    """Truth and the K=4 split reconstructions (numpy) of one simulated scan."""
    from tomochunk.recon.volume import reconstruct

    spec = tc.ScanSpec(n_z=n_z, n_xy=n_xy, n_angles=n_angles, lattice=True, seed=seed)
    scan, truth = tc.simulate_scan(spec)
    pre = PreprocessConfig(center=(n_xy - 1) / 2)
    rec = reconstruct(scan, preprocess=pre, splits=4)
    return {"spec": spec, "truth": truth, "split4": np.asarray(rec["split"].values, np.float32),
            "full": np.asarray(rec["full"].values, np.float32)}


def score(vol: np.ndarray, data: dict[str, Any]) -> dict[str, float]:
    """PSNR/SSIM inside the sample and the lattice contrast along y and z."""
    truth, mask = data["truth"], data["mask"]
    return {"psnr": round(float(psnr(vol, truth, mask)), 3),
            "ssim": round(float(ssim(vol, truth, mask)), 4),
            **lattice_contrast(vol, truth, mask, data["box"], data["spec"].lattice_period)}


def _lattice_amp(v: np.ndarray, period: float, axis: int) -> float:
    """RMS amplitude of ``v`` at the lattice frequency ``1/period`` along ``axis``."""
    v = np.moveaxis(v - v.mean(), axis, -1)
    n = v.shape[-1]
    phase = np.exp(-2j * np.pi * np.arange(n) / period)
    return float(np.sqrt(np.mean(np.abs(v @ phase) ** 2)) / n)


def lattice_box(spec: Any, truth: np.ndarray) -> tuple[slice, slice, slice]:
    """The square box inscribed in the lattice patch (its sign of y checked on the truth)."""
    from tomochunk.phantom.objects import lattice_patch

    px, py, pr, z0, z1 = lattice_patch(spec)
    c, h = (spec.n_xy - 1) / 2, int(pr / np.sqrt(2))
    zs = slice(int(np.ceil(z0)), int(np.floor(z1)) + 1)
    boxes = []
    for row in (c - py, c + py):
        r, col = int(round(row)), int(round(c + px))
        boxes.append((zs, slice(r - h, r + h), slice(col - h, col + h)))
    return max(boxes, key=lambda b: _lattice_amp(truth[b], spec.lattice_period, 1))


def lattice_contrast(vol: np.ndarray, truth: np.ndarray, mask: np.ndarray, box: Any,
                     period: float) -> dict[str, float]:
    """Lattice contrast along y and z relative to the truth's (after the affine fit), and
    their ratio z/y: below 1 the lattice is smeared along z more than along y."""
    from tomochunk.metrics.quality import affine_fit

    a, b = affine_fit(vol, truth, mask)
    v, t = a * vol[box] + b, truth[box]
    cy = _lattice_amp(v, period, 1) / _lattice_amp(t, period, 1)
    cz = _lattice_amp(v, period, 0) / _lattice_amp(t, period, 0)
    return {"lattice_y": round(cy, 3), "lattice_z": round(cz, 3), "z/y": round(cz / cy, 3)}


def _dataset(splits: np.ndarray) -> xr.Dataset:
    return xr.Dataset({"split": (("split", "z", "y", "x"), splits)},
                      attrs={"n_splits": splits.shape[0]})


def run_variant(name: str, data: dict[str, Any], mask: np.ndarray, base: dict[str, Any],
                steps: int, threads: int, k: int = 2, ensembles: tuple[int, ...] = (1, 8),
                **overrides: Any) -> list[dict[str, Any]]:
    """Train one variant for ``steps`` optimiser steps; score it with each ensemble size."""
    splits = merge_splits(data["split4"], k) if k != data["split4"].shape[0] else data["split4"]
    cfg = TrainConfig(**{**base, **overrides, "threads": threads, "device": "cpu"})
    per_epoch = max(1, steps // 10)
    cfg = dataclasses.replace(cfg, epochs=max(1, steps // per_epoch),
                            patches_per_epoch=per_epoch * cfg.batch_size, patience=None)
    torch.set_num_threads(threads)
    c0, t0 = time.process_time(), time.perf_counter()
    model = train(_dataset(np.ascontiguousarray(splits)), config=cfg)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    rows = []
    for ens in ensembles:
        c1 = time.process_time()
        den = denoise_array(splits, model, ensemble=ens)
        rows.append({"variant": name if ens == 1 else f"{name} + D4 x{ens}", "K": k,
                     "network": (f"MSD-{cfg.value('depth')}" if cfg.network == "msd"
                                 else f"UNet{cfg.value('unet_depth')}/"
                                      f"{cfg.value('unet_features')}"),
                     "patch": cfg.patch_size, "batch": cfg.batch_size, "loss": cfg.loss,
                     "schedule": cfg.lr_schedule, "steps": cfg.epochs * per_epoch,
                     "train_cpu_s": round(cpu, 1), "train_wall_s": round(wall, 1),
                     "infer_cpu_s": round(time.process_time() - c1, 1),
                     "best_epoch": model.history["best_epoch"], **score(den, data)})
        print(table(rows[-1:]), flush=True)
    return rows


def step_cost(threads: int, depth: int, patch: int, batch: int, n: int = 3) -> dict[str, Any]:
    """CPU seconds per training step of MSD-``depth``: fp32 versus bf16 autocast (or why
    bf16 cannot run)."""
    from tomochunk.nn.registry import build_network

    torch.set_num_threads(threads)
    out = {}
    for mode in ("fp32", "bf16"):
        torch.manual_seed(0)
        net = build_network("msd", 5, 1, depth=depth)
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        x, y = torch.randn(batch, 5, patch, patch), torch.randn(batch, 1, patch, patch)

        def step(net=net, opt=opt, x=x, y=y, bf16=mode == "bf16") -> None:
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                pred = net(x)
            torch.nn.functional.mse_loss(pred.float(), y).backward()
            opt.step()

        try:
            step()
        except RuntimeError as exc:  # MSD's fused kernel mixes dtypes under autocast
            out[mode] = f"fails: {str(exc)[:80]}"
            continue
        c0 = time.process_time()
        for _ in range(n):
            step()
        out[mode] = round((time.process_time() - c0) / n, 4)
    if all(isinstance(out[m], float) for m in ("fp32", "bf16")):
        out["bf16/fp32"] = round(out["bf16"] / out["fp32"], 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny phantom and 40 steps")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-xy", type=int, default=64)
    ap.add_argument("--n-z", type=int, default=12)
    ap.add_argument("--only", default=None, help="comma-separated variant names to run")
    args = ap.parse_args()
    steps = 40 if args.quick else args.steps
    n_xy, n_z = (48, 10) if args.quick else (args.n_xy, args.n_z)
    t0 = time.perf_counter()
    data = phantom(n_z, n_xy, 4 * 50 if args.quick else 4 * 75, seed=0)
    mask = data["truth"] > 0
    data["mask"] = mask
    data["box"] = lattice_box(data["spec"], data["truth"])
    print(f"phantom {n_z}x{n_xy}^2 simulated and reconstructed (K=4) in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)

    peers: list[dict[str, Any]] = [{"variant": "unfiltered full reconstruction",
                                    **score(data["full"], data)}]
    try:
        import bm4d  # noqa: F401

        peer_note = "bm4d importable (not run by this script yet)"
    except ImportError:
        peer_note = "bm4d not installed in this venv: the peer is the 3D median (radius 2)"
    c0 = time.process_time()
    med = np.asarray(tc.filters.median(data["full"], radius=2))
    peers.append({"variant": "3D median r=2", "train_cpu_s": 0.0,
                  "infer_cpu_s": round(time.process_time() - c0, 1),
                  **score(med, data)})
    print(table(peers), flush=True)

    base = dict(network="msd", depth=30, context=5, patch_size=32, batch_size=8, lr=1e-3,
                loss="mse", lr_schedule="constant", warmup=0.0, seed=0)
    variants: list[tuple[str, dict[str, Any]]] = [
        ("base MSD-30 const lr", {}),
        ("cosine + warm-up", {"lr_schedule": "cosine", "warmup": 0.05}),
        ("K=4 X:1", {"k": 4}),
        ("L1 loss", {"loss": "l1"}),
        ("MSD-20", {"depth": 20}),
        ("MSD-50", {"depth": 50}),
        ("UNet 3x16 (2.5D)", {"network": "unet", "unet_depth": 3, "unet_features": 16}),
        ("patch 48 x batch 4", {"patch_size": 48, "batch_size": 4}),
        ("onecycle", {"lr_schedule": "onecycle", "warmup": 0.3, "lr": 2e-3}),
        ("cosine lr 3e-3", {"lr_schedule": "cosine", "warmup": 0.05, "lr": 3e-3}),
    ]
    if args.only:
        keep = {v.strip() for v in args.only.split(",")}
        variants = [v for v in variants if v[0] in keep]
    rows: list[dict[str, Any]] = []
    meta = {"phantom": {"n_z": n_z, "n_xy": n_xy, "splits": 4, "lattice": True, "seed": 0},
            "steps": steps, "threads": args.threads, "peer_note": peer_note,
            "cost_unit": "optimiser steps; CPU seconds via time.process_time"}
    for name, ov in variants:
        ov = dict(ov)
        k = ov.pop("k", 2)
        rows += run_variant(name, data, mask, base, steps, args.threads, k=k, **ov)
        write_json("n2i_ablation", {**meta, "partial": True, "peers": peers, "variants": rows})
    ref = next((r["psnr"] for r in rows if r["variant"] == "base MSD-30 const lr"), None)
    med_psnr = peers[1]["psnr"]
    for r in rows:
        r["gain_db_vs_base"] = None if ref is None else round(r["psnr"] - ref, 3)
        r["vs_median_db"] = round(r["psnr"] - med_psnr, 3)
    cost = step_cost(args.threads, 30, base["patch_size"], base["batch_size"])
    print("\n" + table(peers + rows, ["variant", "K", "network", "patch", "batch", "loss",
                                      "schedule", "steps", "train_cpu_s", "infer_cpu_s",
                                      "psnr", "ssim", "lattice_y", "z/y", "gain_db_vs_base",
                                      "vs_median_db"]))
    print(f"\nMSD-30 step CPU s ({base['patch_size']}^2 x {base['batch_size']}): {cost}")
    print(f"peer: {peer_note}; cost = optimiser steps (equal) and CPU seconds "
          f"(process_time, {args.threads} torch threads)")
    path = write_json("n2i_ablation", {
        **meta, "peers": peers, "lattice_box": [str(b) for b in data["box"]], "variants": rows,
        "bf16_step_cost": cost})
    print(f"results: {path}")


if __name__ == "__main__":
    main()
