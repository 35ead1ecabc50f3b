"""Which network learns fastest per CPU second? Noise2Inverse at equal CPU-time budgets.

Every variant trains for the same **CPU time** (``time.process_time``, torch threads fixed
to ``--threads``) on one project phantom (``demo_spec("bench")`` at ``--nz x --nxy²``,
``--angles`` angles: hole lattice, beam profile, ring defects, Poisson noise), reconstructed
with K=4 interleaved splits on the phantom's own grid (rotation axis at ``(n-1)/2`` in both).
Training pairs are Noise2Inverse X:1 (input: mean of three splits, target: the fourth) with
2.5D context, random patches and the 8 square symmetries; the output is the average over the
four pairings. The loop is a minimal one (no validation, constant Adam lr) so that only the
network and the patch/batch shape differ between variants; the numbers choose the settings
of :func:`tomochunk.training.budget.budget_settings`.

Peers in the same run: BM4D (``benchmarks/peers/.venv``, sigma from the split difference)
when installed, the 3D median (radius 2) and the unfiltered reconstruction.

    python benchmarks/n2i_networks.py [--cpu 600] [--only unet16 msd30] [--quick]
        [--checkpoints 240 360 600] [--ensemble 8]

``--checkpoints`` scores each network along the way (a PSNR-against-CPU curve from one
training run); ``--ensemble 8`` also scores the final network's D4 self-ensemble.

Writes a table and ``benchmarks/results/n2i_networks.json`` (``--name`` for another name).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, write_json  # noqa: E402

import tomochunk as tc  # noqa: E402
from tomochunk import metrics  # noqa: E402
from tomochunk.nn.msd import MSDNet  # noqa: E402
from tomochunk.nn.unet import UNet  # noqa: E402
from tomochunk.phantom.labels import lattice_mask, sample_mask  # noqa: E402

PEER_PYTHON = Path(__file__).resolve().parent / "peers" / ".venv" / "bin" / "python"

#: name -> (network, patch, batch); "s2d": UNet(space_to_depth=2), the 2x2 pixel-unshuffled
#: slice (FFDNet-like), which train --budget picks on CPU
VARIANTS: dict[str, dict[str, Any]] = {
    "msd30": {"net": "msd", "depth": 30, "patch": 96, "batch": 8},
    "msd30-residual": {"net": "msd", "depth": 30, "patch": 96, "batch": 8, "residual": True},
    "unet16": {"net": "unet", "levels": 3, "features": 16, "patch": 96, "batch": 8},
    "unet16-residual": {"net": "unet", "levels": 3, "features": 16, "patch": 96, "batch": 8,
                        "residual": True},
    "unet16-p64b16": {"net": "unet", "levels": 3, "features": 16, "patch": 64, "batch": 16},
    "unet16-lr2e-3": {"net": "unet", "levels": 3, "features": 16, "patch": 96, "batch": 8,
                      "lr": 2e-3},
    "s2d-unet32x2": {"net": "s2d", "levels": 2, "features": 32, "patch": 96, "batch": 8},
}


class Residual(nn.Module):
    """``centre slice + net(x)``: the network learns the correction to its input."""

    def __init__(self, net: nn.Module, context: int):
        super().__init__()
        self.net, self.centre = net, context // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.centre:self.centre + 1] + self.net(x)


def build(v: dict[str, Any], context: int) -> nn.Module:
    if v["net"] == "msd":
        net: nn.Module = MSDNet(context, 1, depth=v["depth"], width=1)
    elif v["net"] == "unet":
        net = UNet(context, 1, depth=v["levels"], features=v["features"])
    else:  # the shipped option: the UNet on the 2x2 pixel-unshuffled slice
        net = UNet(context, 1, depth=v["levels"], features=v["features"], space_to_depth=2)
    return Residual(net, context) if v.get("residual") else net


def phantom(nz: int, nxy: int, angles: int, photons: float, seed: int, threads: int
            ) -> tuple[Any, np.ndarray, np.ndarray]:
    spec = tc.demo_spec("bench", n_z=nz, n_xy=nxy, n_angles=angles, photons=photons, seed=seed)
    scan, truth = tc.simulate_scan(spec)
    rec = tc.reconstruct(scan, splits=4, center=spec.center, threads=threads)
    return spec, np.asarray(rec["split"].values, np.float32), np.asarray(truth, np.float32)


def score(vol: np.ndarray, truth: np.ndarray, spec: Any) -> dict[str, float]:
    m = sample_mask(spec)
    a, b = metrics.affine_fit(vol, truth, m)
    lc = metrics.lattice_contrast(a * vol + b, truth, lattice_mask(spec), spec.lattice_frequency)
    return {"psnr": round(float(metrics.psnr(vol, truth, m)), 3),
            "ssim": round(float(metrics.ssim(vol, truth, m)), 4),
            "lattice_y": round(lc["y"], 3), "lattice_z": round(lc["z"], 3),
            "anisotropy": round(lc["anisotropy"], 3)}


def _d4(x: torch.Tensor, i: int, inverse: bool = False) -> torch.Tensor:
    if not inverse:
        x = torch.flip(x, (-1,)) if i >= 4 else x
        return torch.rot90(x, i % 4, (-2, -1))
    x = torch.rot90(x, -(i % 4), (-2, -1))
    return torch.flip(x, (-1,)) if i >= 4 else x


def _context(vol: np.ndarray, z: int, c: int) -> np.ndarray:
    n = vol.shape[0]
    idx = np.abs(np.arange(z - c // 2, z + c // 2 + 1))
    return vol[np.where(idx >= n, 2 * (n - 1) - idx, idx)]


def denoise(net: nn.Module, inputs: np.ndarray, context: int, ensemble: int = 1) -> np.ndarray:
    """Average of the network over the X:1 pairings (and ``ensemble`` D4 transforms)."""
    k_n, nz = inputs.shape[:2]
    out = np.zeros(inputs.shape[1:], np.float32)
    net.eval()
    with torch.no_grad():
        for k in range(k_n):
            for z in range(nz):
                x = torch.from_numpy(_context(inputs[k], z, context)[None].copy())
                for g in range(ensemble):
                    out[z] += _d4(net(_d4(x, g)), g, inverse=True)[0, 0].numpy()
    net.train()
    return out / (k_n * ensemble)


def run_variant(v: dict[str, Any], split: np.ndarray, cpu: float, context: int, seed: int,
                checkpoints: tuple[float, ...] = (), ensemble: int = 1
                ) -> list[tuple[str, np.ndarray, dict[str, Any]]]:
    """Train ``v`` for ``cpu`` CPU seconds on the X:1 pairs of ``split``; denoise.

    Returns ``(label, volume, cost)`` for the network after each of ``checkpoints`` CPU
    seconds of training (the learning rate is constant, so a shorter budget would have given
    the same network), after ``cpu``, and, with ``ensemble`` > 1, the last one's D4
    self-ensemble. Scoring time is not counted as training time.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    full = split.mean(0)
    mean, std = float(full.mean()), float(full.std())
    s = (split - mean) / std
    k_n = s.shape[0]
    inputs = np.stack([(s.sum(0) - s[k]) / (k_n - 1) for k in range(k_n)])
    net = build(v, context)
    opt = torch.optim.Adam(net.parameters(), lr=v.get("lr", 1e-3))
    p, b = v["patch"], v["batch"]
    _, nz, ny, nx = s.shape
    out: list[tuple[str, np.ndarray, dict[str, Any]]] = []

    def scored(label: str, train_cpu: float, ens: int = 1) -> None:
        t1 = time.process_time()
        vol = denoise(net, inputs, context, ens) * std + mean
        out.append((label, vol, {"steps": steps, "train_cpu_s": round(train_cpu, 1),
                                 "infer_cpu_s": round(time.process_time() - t1, 1)}))

    pending = sorted(c for c in checkpoints if c < cpu)
    t0, steps, paused = time.process_time(), 0, 0.0
    while (used := time.process_time() - t0 - paused) < cpu:
        if pending and used >= pending[0]:
            t_eval = time.process_time()
            scored(f"{pending.pop(0):.0f} CPU-s", used)
            paused += time.process_time() - t_eval
            continue
        xs, ys = [], []
        for _ in range(b):
            k, z = rng.integers(k_n), rng.integers(nz)
            y, x = rng.integers(ny - p + 1), rng.integers(nx - p + 1)
            xs.append(_context(inputs[k], z, context)[:, y:y + p, x:x + p])
            ys.append(s[k, z, y:y + p, x:x + p][None])
        g = int(rng.integers(8))
        xb, yb = _d4(torch.from_numpy(np.stack(xs)), g), _d4(torch.from_numpy(np.stack(ys)), g)
        opt.zero_grad()
        nn.functional.mse_loss(net(xb), yb).backward()
        opt.step()
        steps += 1
    train_cpu = time.process_time() - t0 - paused
    scored(f"{cpu:.0f} CPU-s", train_cpu)
    if ensemble > 1:
        scored(f"{cpu:.0f} CPU-s, D4 x{ensemble}", train_cpu, ensemble)
    return out


def bm4d(full: np.ndarray, sigma: float, threads: int) -> tuple[np.ndarray | None, str]:
    if not PEER_PYTHON.exists():
        return None, "peer venv missing: bash benchmarks/peers/make_venv.sh"
    with tempfile.TemporaryDirectory() as d:
        np.savez(Path(d) / "in.npz", full=full)
        script = Path(__file__).resolve().parent / "peers" / "run_bm4d.py"
        r = subprocess.run([str(PEER_PYTHON), str(script), f"{d}/in.npz", f"{d}/out.npy",
                            "--sigma", repr(sigma), "--threads", str(threads)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            return None, f"bm4d failed: {r.stderr.strip().splitlines()[-1:]}"
        return np.load(Path(d) / "out.npy"), ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nz", type=int, default=32)
    ap.add_argument("--nxy", type=int, default=128)
    ap.add_argument("--angles", type=int, default=512)
    ap.add_argument("--photons", type=float, default=800)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cpu", type=float, default=600, help="CPU seconds of training per variant")
    ap.add_argument("--context", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", nargs="*", choices=sorted(VARIANTS))
    ap.add_argument("--checkpoints", nargs="*", type=float, default=[],
                    help="also score each network after these CPU seconds of training")
    ap.add_argument("--ensemble", type=int, default=1, choices=[1, 2, 4, 8],
                    help="also score the final network's D4 self-ensemble of this size")
    ap.add_argument("--quick", action="store_true", help="16 x 64², 256 angles, 20 CPU-s")
    ap.add_argument("--name", default=None,
                    help="results name (default n2i_networks[-quick])")
    args = ap.parse_args()
    if args.quick:
        args.nz, args.nxy, args.angles, args.cpu = 16, 64, 256, 20.0
    torch.set_num_threads(args.threads)
    spec, split, truth = phantom(args.nz, args.nxy, args.angles, args.photons, args.seed,
                                 args.threads)
    full = split.mean(0)
    rows: list[dict[str, Any]] = [{"method": "unfiltered", **score(full, truth, spec)},
                                  {"method": "3D median r=2",
                                   **score(np.asarray(tc.filters.median(full, radius=2)),
                                           truth, spec)}]
    sigma = float(tc.filters.split_sigma(split[0::2].mean(0), split[1::2].mean(0), 2))
    t0 = time.time()
    out, why = bm4d(full, sigma, args.threads)
    rows.append({"method": "BM4D", **(score(out, truth, spec) if out is not None else
                                      {"note": why}), "train_wall_s": round(time.time() - t0, 1)})
    for name in args.only or list(VARIANTS):
        variant = {**VARIANTS[name], "patch": min(VARIANTS[name]["patch"], args.nxy)}
        for label, vol, cost in run_variant(variant, split, args.cpu, args.context, args.seed,
                                            tuple(args.checkpoints), args.ensemble):
            rows.append({"method": f"N2I {name} ({label})", **score(vol, truth, spec), **cost})
            print(table(rows[-1:]), flush=True)
    ref = next((r["psnr"] for r in rows if r["method"] == "BM4D" and "psnr" in r), None)
    for r in rows:
        if ref is not None and "psnr" in r:
            r["dB_vs_bm4d"] = round(r["psnr"] - ref, 2)
    print(table(rows, ["method", "psnr", "ssim", "dB_vs_bm4d", "lattice_y", "lattice_z",
                       "anisotropy", "steps", "train_cpu_s", "infer_cpu_s"]))
    name = args.name or ("n2i_networks-quick" if args.quick else "n2i_networks")
    print(write_json(name, {"args": vars(args), "sigma": sigma, "rows": rows}))


if __name__ == "__main__":
    main()
