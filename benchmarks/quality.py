"""Denoising quality versus compute: tomochunk N2I against classical and ML peers (issue 12).

On the project's own phantoms (``cells`` with the hole lattice near the resolution limit,
ring defects, a condenser beam profile, Poisson noise) for several seeds and noise levels,
every method gets the same reconstruction and, where it trains, the same time budgets:

* ``n2i``: tomochunk Noise2Inverse through the public API (``tc.train`` + ``tc.denoise``), with
  ``TrainConfig.budget_minutes`` when that field exists, else ``max_minutes`` (MSD-30);
* ``n2v2`` / ``n2n``: CAREamics N2V2 on the full reconstruction and N2N (2D UNet) on the split
  pair, run as subprocesses in ``benchmarks/peers/.venv`` (``make_venv.sh``);
* ``bm4d``: BM4D with sigma from the split difference (peers venv); ``bm4d_psd``: BM4D with
  the noise power spectrum of the split difference (tomographic noise is not white);
* ``median`` (r=2), ``nlm``, ``iternlm`` (sigma from the split difference, ``auto-split``),
  ``unfiltered``.

Held-out reference: each scan is reconstructed with K=4 interleaved splits; the methods see
only the even angles (splits 0 and 2: their K=2 problem, ``full = (s0 + s2) / 2``), and the
odd angles (splits 1 and 3) are the noisy reference of the truth-free score
(:func:`tomochunk.metrics.truth_free_mse`), which is checked against the true MSE here.

Per method: PSNR and SSIM inside the sample after a least-squares affine fit to the truth
(the truth is simulated on the reconstruction's grid, the rotation axis at (n-1)/2, so no
registration is needed), lattice contrast along y and z and their ratio (anisotropy), Dice
and porosity error of an Otsu segmentation of the lattice (holes/walls), mean Dice of a
3-phase multi-Otsu segmentation of the sample, axial FRC resolution along z and y where two
independent outputs exist (unfiltered, median), the truth-free MSE, and wall/CPU time.
The 3-phase Dice is given twice: multi-Otsu (``dice_phases``) and at the true phase
boundaries (``dice_phases_fixed``): multi-Otsu mis-splits the phantom's rare low phase.

Prints a table (median over seeds), writes ``benchmarks/results/quality[-quick].json`` and a
PNG of PSNR against minutes::

    python benchmarks/quality.py --quick          # 24 x 96^2, 1 seed, 1 noise, budgets 1 2
    python benchmarks/quality.py                  # 64 x 256^2, 3 seeds, 2 noises, 2 5 10 20
    python benchmarks/quality.py --real /work/shared/data/tomopy-tooth/tooth.h5 --center 296
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, table, write_json  # noqa: E402

import tomochunk as tc  # noqa: E402
from tomochunk import metrics  # noqa: E402
from tomochunk.metrics.segmentation import score_segmentation  # noqa: E402
from tomochunk.metrics.truthfree import holdout_splits  # noqa: E402
from tomochunk.phantom import (  # noqa: E402
    lattice_labels,
    lattice_mask,
    phase_labels,
    phase_thresholds,
    sample_mask,
)

PEERS = Path(__file__).resolve().parent / "peers"
PEER_PYTHON = PEERS / ".venv" / "bin" / "python"
TRAINED = ("n2i", "n2v2", "n2n")
FIXED = ("bm4d", "bm4d_psd", "median", "nlm", "iternlm", "unfiltered")
BM4D = ("bm4d", "bm4d_psd")


def load_note(threads: int) -> str:
    """What else the machine ran: its load average at the end of the run."""
    one, five, fifteen = os.getloadavg()
    return (f"load average at the end of the run {one:.1f} / {five:.1f} / {fifteen:.1f} "
            f"(1 / 5 / 15 min), of which the run itself accounts for about {threads}; more "
            "means other work shared the cores and the wall times are upper bounds")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    c = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime + c.ru_utime + c.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    w0, c0 = time.perf_counter(), cpu_seconds()
    out = fn()
    return out, time.perf_counter() - w0, cpu_seconds() - c0


# -- data ------------------------------------------------------------------------------------
@dataclasses.dataclass
class Case:
    """One noisy scan: the methods' K=2 split pair, the held-out reference halves, truth."""

    name: str
    split: np.ndarray  # (2, z, y, x): the methods' input
    ref: np.ndarray  # (2, z, y, x): held-out halves (odd angles)
    truth: np.ndarray | None
    spec: tc.ScanSpec | None
    sample: np.ndarray  # bool mask (z, y, x)

    @property
    def full(self) -> np.ndarray:
        return self.split.mean(axis=0)


def phantom_case(spec: tc.ScanSpec, threads: int) -> Case:
    scan, truth = tc.simulate_scan(spec)
    rec = tc.reconstruct(scan, splits=4, center=spec.center, threads=threads)
    split = np.asarray(rec["split"].values, np.float32)
    used, held = holdout_splits(4)
    return Case(f"seed{spec.seed}-ph{spec.photons:g}", split[list(used)], split[list(held)],
                truth, spec, sample_mask(spec))


def real_case(path: str, center: float, threads: int) -> Case:
    work = Path(tempfile.mkdtemp(prefix="q12real-"))
    try:
        scan = tc.ingest(path, work / "scan.zarr")
        rec = tc.reconstruct(scan, splits=4, center=center, threads=threads)
        split = np.asarray(rec["split"].values, np.float32)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    used, held = holdout_splits(4)
    nz, ny, nx = split.shape[1:]
    yy, xx = np.mgrid[:ny, :nx]
    disc = np.hypot(yy - (ny - 1) / 2, xx - (nx - 1) / 2) < 0.45 * min(ny, nx)
    return Case(Path(path).stem, split[list(used)], split[list(held)], None, None,
                np.broadcast_to(disc, (nz, ny, nx)).copy())


def split_sigma(case: Case) -> float:
    return tc.filters.split_sigma(case.split[0], case.split[1], 2)


# -- methods ---------------------------------------------------------------------------------
def n2i_config(minutes: float, threads: int, seed: int, n_z: int = 64,
               overrides: dict[str, Any] | None = None) -> tc.TrainConfig:
    """The N2I training config for a budget (``overrides``: other TrainConfig values, flat
    keys too, coerced and checked as ``--set`` values are)."""
    names = {f.name for f in dataclasses.fields(tc.TrainConfig)}
    kw: dict[str, Any] = {"threads": threads, "device": "cpu", "seed": seed}
    if n_z < 8:  # a few detector rows (the tooth has 2): 2D input, half the slices validate
        kw.update(context=1, val_fraction=0.5)
    if "budget_minutes" in names:
        kw["budget_minutes"] = minutes
    else:
        kw.update(max_minutes=minutes, epochs=10000, depth=30)
    cfg = tc.TrainConfig(**kw)
    return cfg.with_values(**overrides) if overrides else cfg


def n2i_name(overrides: dict[str, Any]) -> str:
    """The method name of N2I trained with ``overrides``: ``n2i[lr_schedule=cosine]``."""
    if not overrides:
        return "n2i"
    return "n2i[" + ",".join(f"{k}={v}" for k, v in sorted(overrides.items())) + "]"


def parse_settings(items: list[str]) -> dict[str, Any]:
    """``["lr_schedule=cosine", "lr=2e-3"]`` -> TrainConfig values, read as YAML (the
    config's own coercion turns ``"2e-3"`` into a float in :func:`n2i_config`)."""
    from tomochunk.safe_yaml import load_yaml

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--n2i-set takes KEY=VALUE (got {item!r})")
        out[key] = load_yaml(value, f"--n2i-set {key}")
    return out


def run_n2i(case: Case, minutes: float, threads: int, work: Path,
            overrides: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """N2I's denoised volume, and its planned steps and best epoch (for the row)."""
    import xarray as xr

    from tomochunk.io.store import write_dataset

    store = work / f"{case.name}-recon2.zarr"
    if not store.exists():
        ds = xr.Dataset({"full": (("z", "y", "x"), case.full),
                         "split": (("split", "z", "y", "x"), case.split)},
                        attrs={"n_splits": 2})
        write_dataset(ds, store)
    cfg = n2i_config(minutes, threads, seed=0, n_z=case.full.shape[0], overrides=overrides)
    model = tc.train(store, work / f"{case.name}-{n2i_name(overrides or {})}-{minutes:g}",
                     config=cfg, overwrite=True)
    # the D4 self-ensemble (+0.15-0.3 dB in n2i_ablation.py) is worth its 8x inference here
    vol = np.asarray(tc.denoise(store, model, ensemble=8).values, np.float32)
    meta = model.metadata
    plan = meta.get("budget") or {}
    info = {"n2i_steps": plan.get("steps"), "n2i_best_epoch": meta.get("best_epoch"),
            "n2i_epochs": cfg.epochs if not plan else None}
    return vol, {k: v for k, v in info.items() if v is not None}


def peer_available(module: str) -> str | None:
    """None if the peer can run, else why not (shown in the table)."""
    if not PEER_PYTHON.exists():
        return "peers venv missing (bash benchmarks/peers/make_venv.sh)"
    r = subprocess.run([str(PEER_PYTHON), "-c", f"import {module}"], capture_output=True,
                       text=True)
    return None if r.returncode == 0 else f"{module} not importable in the peers venv"


def run_peer(script: str, lead: list[str], args: list[str], case: Case, work: Path,
             timeout: float) -> tuple[np.ndarray, dict[str, Any]]:
    """Run ``script LEAD... IN.npz OUT.npy ARGS...`` in the peers venv; read OUT.npy."""
    inp = work / f"{case.name}-input.npz"
    if not inp.exists():
        np.savez(inp, full=case.full, split=case.split)
    out = work / f"{case.name}-{script}-{'-'.join(lead + args)}.npy".replace("/", "_")
    cmd = [str(PEER_PYTHON), str(PEERS / script), *lead, str(inp), str(out), *args]
    env = {**os.environ, "PYTHONPATH": ""}
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if r.returncode != 0 or not out.exists():
        raise RuntimeError(f"{script} failed: {r.stderr.strip().splitlines()[-1:]}")
    info = json.loads(out.with_suffix(".json").read_text())
    return np.load(out), info


# -- scores ----------------------------------------------------------------------------------
def score(vol: np.ndarray, case: Case, pair: tuple[np.ndarray, np.ndarray] | None
          ) -> dict[str, Any]:
    m = case.sample
    s: dict[str, Any] = {"tf_mse": metrics.truth_free_mse(vol, case.ref[0], case.ref[1], m).mse}
    if pair is not None:  # two independent outputs: axial FRC resolution per axis
        for ax, n in (("z", vol.shape[0]), ("y", vol.shape[1])):
            if n < 8:  # a few slices (the tooth): no FRC along that axis
                continue
            r = metrics.axial_frc(pair[0], pair[1], ax)
            s[f"frc_{ax}_px"] = r.resolution_px
    if case.truth is None or case.spec is None:
        return s
    t, spec = case.truth, case.spec
    a, b = metrics.affine_fit(vol, t, m)
    fitted = a * vol + b
    s["psnr"] = metrics.psnr(vol, t, m)
    s["ssim"] = metrics.ssim(vol, t, m)
    s["true_mse"] = float(np.mean((fitted - t)[m] ** 2))
    s["true_mse_raw"] = float(np.mean((vol - t)[m] ** 2))  # what tf_mse estimates
    lc = metrics.lattice_contrast(fitted, t, lattice_mask(spec), spec.lattice_frequency)
    s.update(lattice_y=lc["y"], lattice_z=lc["z"], anisotropy=lc["anisotropy"])
    seg = score_segmentation(fitted, lattice_labels(spec, t))
    s.update(dice_lattice=seg.mean_dice, dice_holes=seg.dice[0], porosity_err=seg.porosity_error)
    phases = phase_labels(spec, t)
    s["dice_phases"] = score_segmentation(fitted, phases).mean_dice
    # at the true phase boundaries: multi-Otsu mis-splits the rare low phase (a few per cent)
    s["dice_phases_fixed"] = score_segmentation(fitted, phases,
                                                thresholds=phase_thresholds(spec)).mean_dice
    return s


# -- the run ---------------------------------------------------------------------------------
def run_case(case: Case, budgets: list[float], methods: list[str], threads: int,
             work: Path, skipped: dict[str, str],
             on_row: Callable[[list[dict[str, Any]]], None] = lambda rows: None,
             keep: Path | None = None, n2i_set: dict[str, Any] | None = None
             ) -> list[dict[str, Any]]:
    """Every method on one case; ``on_row(rows)`` after each method (partial results).

    ``n2i_set``: TrainConfig values that N2I is trained with (its rows are then named
    ``n2i[KEY=VALUE,...]``).

    With ``keep``, the case (split, held-out reference, truth) and every method's output are
    saved there as ``VOLUME-CASE-case.npz`` and ``VOLUME-CASE-METHOD[-Bmin].npy``, so that
    they can be scored again without running the methods again."""
    rows: list[dict[str, Any]] = []
    sigma = split_sigma(case)
    log(f"{case.name}: volume {case.full.shape}, split-difference sigma {sigma:.4g}")
    volume = "x".join(map(str, case.full.shape[:2]))
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(keep / f"{volume}-{case.name}-case.npz", split=case.split,
                            ref=case.ref, sample=case.sample,
                            **({} if case.truth is None else {"truth": case.truth}))

    def add(method: str, budget: float | None, fn: Callable[[], Any],
            pair_fn: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None) -> None:
        row: dict[str, Any] = {"case": case.name, "method": method, "budget_min": budget,
                               "volume": volume}
        if method in skipped:
            rows.append({**row, "skipped": skipped[method]})
            return
        try:
            out, wall, cpu = timed(fn)
        except Exception as exc:  # noqa: BLE001 - one failing method must not end the run
            log(f"  {method} {budget}: FAILED {exc}")
            rows.append({**row, "skipped": f"failed: {exc}"})
            on_row(rows)
            return
        info: dict[str, Any] = {}
        if isinstance(out, tuple):
            out, info = out
        # cpu counts the peer's subprocess too (RUSAGE_CHILDREN, once it has been waited for),
        # so the peer's own cpu_s is not added again
        row.update(wall_s=wall, cpu_s=cpu)
        for key in ("train_wall_s", "n2i_steps", "n2i_best_epoch", "n2i_epochs"):
            if key in info:
                row[key] = info[key]
        pair = pair_fn() if pair_fn is not None else None
        out = np.asarray(out, np.float32)
        row.update(score(out, case, pair))
        if keep is not None:
            tag = "" if budget is None else f"-{budget:g}min"
            np.save(keep / f"{volume}-{case.name}-{method}{tag}.npy", out)
        log(f"  {method:10s} {'' if budget is None else f'{budget:g} min':7s} "
            f"PSNR {row.get('psnr', float('nan')):.2f}  wall {wall:.0f} s")
        rows.append(row)
        on_row(rows)

    s0, s1 = case.split
    if "unfiltered" in methods:
        add("unfiltered", None, lambda: case.full, lambda: (s0, s1))
    if "median" in methods:
        add("median", None, lambda: tc.filters.median(case.full, radius=2),
            lambda: (tc.filters.median(s0, radius=2), tc.filters.median(s1, radius=2)))
    if "nlm" in methods:
        add("nlm", None, lambda: tc.filters.nlm(case.full, sigma=sigma))
    if "iternlm" in methods:
        add("iternlm", None, lambda: tc.filters.iternlm(case.full, sigma=sigma))
    for variant, extra in (("bm4d", []), ("bm4d_psd", ["--psd"])):
        if variant in methods:
            add(variant, None, lambda extra=extra: run_peer(
                "run_bm4d.py", [], ["--sigma", f"{sigma:.6g}", "--threads", str(threads), *extra],
                case, work, timeout=4 * 3600))
    for b in budgets:
        if "n2i" in methods:
            add(n2i_name(n2i_set or {}), b,
                lambda b=b: run_n2i(case, b, threads, work, n2i_set))
        for peer in ("n2v2", "n2n"):
            if peer in methods:
                add(peer, b, lambda b=b, peer=peer: run_peer(
                    "run_careamics.py", [peer], ["--minutes", f"{b:g}", "--threads",
                                                 str(threads)],
                    case, work, timeout=b * 60 + 1800))
    return rows


def case_key(r: dict[str, Any]) -> str:
    """The case a row belongs to, volume size included: ``32x128-seed0-ph800``."""
    return f"{r['volume']}-{r['case']}" if r.get("volume") else r["case"]


def with_differences(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each scored row with its PSNR difference to BM4D and to the best CAREamics method at
    the same budget, both on the same case (so the summary takes the median of per-seed
    differences, not the difference of medians)."""
    out = []
    for r in rows:
        r = dict(r)
        if "psnr" in r:
            same = [o for o in rows if case_key(o) == case_key(r) and "psnr" in o]
            bm = [o["psnr"] for o in same if o["method"] in BM4D]
            if bm:  # against the better of BM4D's two noise models
                r["dPSNR_bm4d"] = r["psnr"] - max(bm)
            care = [o["psnr"] for o in same if o["method"] in ("n2v2", "n2n")
                    and o["budget_min"] == r["budget_min"]]
            if care and r["budget_min"] is not None:
                r["dPSNR_care"] = r["psnr"] - max(care)
        out.append(r)
    return out


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median over seeds; volume sizes and noise levels (the case's photons) kept apart."""
    groups: dict[tuple[str, str, Any], list[dict[str, Any]]] = {}
    for r in with_differences(rows):
        noise = r["case"].split("-", 1)[1] if "-" in r["case"] else r["case"]
        if r.get("volume"):
            noise = f"{r['volume']}-{noise}"
        groups.setdefault((noise, r["method"], r["budget_min"]), []).append(r)
    keys = ("psnr", "ssim", "dPSNR_bm4d", "dPSNR_care", "lattice_y", "lattice_z",
            "anisotropy", "dice_lattice", "porosity_err", "dice_phases", "dice_phases_fixed",
            "frc_z_px", "frc_y_px", "true_mse_raw", "tf_mse", "wall_s", "cpu_s")
    out = []
    for (noise, method, budget), rs in groups.items():
        row: dict[str, Any] = {"noise": noise, "method": method,
                               "budget": "" if budget is None else budget, "n": len(rs)}
        done = [r for r in rs if "skipped" not in r]
        if not done:
            row["note"] = rs[0]["skipped"]
        for k in keys:
            vals = [r[k] for r in done if r.get(k) is not None]
            if vals:
                row[k] = float(np.median(vals))
        out.append(row)
    return out


def rank_agreement(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Per case: Spearman correlation over methods of the truth-free MSE with the true MSE
    (both without an affine fit: the truth-free score compares raw values)."""
    from scipy.stats import spearmanr

    out = {}
    for case in sorted({case_key(r) for r in rows}):
        rs = [r for r in rows if case_key(r) == case and "true_mse_raw" in r]
        if len(rs) >= 3:
            rho = spearmanr([r["tf_mse"] for r in rs], [r["true_mse_raw"] for r in rs])[0]
            out[case] = float(rho)
    return out


def plot(summary: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    noises = sorted({r["noise"] for r in summary})
    fig, axes = plt.subplots(1, len(noises), figsize=(6 * len(noises), 4.5), squeeze=False)
    for ax, noise in zip(axes[0], noises, strict=True):
        rs = [r for r in summary if r["noise"] == noise and "psnr" in r]
        for method in sorted({r["method"] for r in rs}):
            mr = sorted((r for r in rs if r["method"] == method),
                        key=lambda r: (r["budget"] or 0))
            if method in TRAINED or method.startswith("n2i["):
                ax.plot([r["budget"] for r in mr], [r["psnr"] for r in mr], "o-", label=method)
            else:  # one point at its own compute time, a dotted level across
                x = mr[0]["wall_s"] / 60
                ax.axhline(mr[0]["psnr"], ls=":", lw=0.8, color="grey")
                ax.plot([x], [mr[0]["psnr"]], "s", label=f"{method} ({x:.1f} min)")
        ax.set_xlabel("training budget / compute (minutes)")
        ax.set_ylabel("PSNR in the sample (dB, affine fit)")
        ax.set_title(f"{noise} (median over seeds)")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="24 x 96^2, 256 angles, 1 seed, 800 photons, budgets 1 2 min")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--photons", type=float, nargs="*", default=[800.0, 300.0],
                    help="noise levels (flat-field photons); none: real scans only")
    ap.add_argument("--nz", type=int, default=64)
    ap.add_argument("--nxy", type=int, default=256)
    ap.add_argument("--angles", type=int, default=1024,
                    help="angles simulated; the methods see half of them (even angles)")
    ap.add_argument("--budgets", type=float, nargs="+", default=[2.0, 5.0, 10.0, 20.0])
    ap.add_argument("--methods", nargs="+", default=[*TRAINED, *FIXED])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--real", nargs="*", default=[], help="real scans (truth-free score only)")
    ap.add_argument("--center", type=float, nargs="*", default=[],
                    help="rotation centre of each --real scan")
    ap.add_argument("--name", default=None, help="results name (default quality[-quick])")
    ap.add_argument("--keep", default=None, metavar="DIR",
                    help="save every case and every method's output volume in DIR (.npy)")
    ap.add_argument("--n2i-set", nargs="+", default=[], metavar="KEY=VALUE",
                    help="train N2I with these TrainConfig values (e.g. lr_schedule=cosine); "
                         "its rows are named n2i[KEY=VALUE]")
    ap.add_argument("--merge", nargs="+", default=[], metavar="JSON",
                    help="run nothing: summarise the rows of earlier runs' JSON files "
                         "together (median over their seeds) under --name")
    args = ap.parse_args()
    if args.merge:
        if not args.name:
            ap.error("--merge needs --name for the merged results")
        report(load_rows(args.merge), args.name, {"merge": args.merge}, total=None)
        return
    if args.quick:
        args.seeds, args.photons, args.nz, args.nxy = [0], [800.0], 24, 96
        args.angles, args.budgets = 256, [1.0, 2.0]
    if len(args.center) != len(args.real):
        ap.error("give one --center per --real scan")
    n2i_set = parse_settings(args.n2i_set)
    if n2i_set:
        n2i_config(10.0, args.threads, 0, overrides=n2i_set)  # a bad value fails before work
    import torch

    torch.set_num_threads(args.threads)
    name = args.name or ("quality-quick" if args.quick else "quality")
    skipped = {}
    for method, module in (("bm4d", "bm4d"), ("bm4d_psd", "bm4d"), ("n2v2", "careamics"),
                           ("n2n", "careamics")):
        why = peer_available(module) if method in args.methods else None
        if why:
            skipped[method] = why
            log(f"{method}: skipped ({why})")
    rows: list[dict[str, Any]] = []
    keep = None if args.keep is None else Path(args.keep)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="q12bench-") as tmp:
        work = Path(tmp)
        for photons in args.photons:
            for seed in args.seeds:
                spec = tc.phantom.demo_spec("bench", n_z=args.nz, n_xy=args.nxy,
                                            n_angles=args.angles, photons=photons, seed=seed)
                case = phantom_case(spec, args.threads)
                done = list(rows)
                rows += run_case(case, args.budgets, args.methods, args.threads, work, skipped,
                                 on_row=lambda new, done=done: write_json(
                                     name + "-partial", {"rows": done + new, "args": vars(args)}),
                                 keep=keep, n2i_set=n2i_set)
        for path, center in zip(args.real, args.center, strict=True):
            case = real_case(path, center, args.threads)
            rows += run_case(case, args.budgets[:1], args.methods, args.threads, work, skipped,
                             keep=keep, n2i_set=n2i_set)
    report(rows, name, vars(args), total=time.perf_counter() - t0)


def load_rows(paths: list[str]) -> list[dict[str, Any]]:
    """The rows of earlier runs, each tagged with its volume size and source file.

    A file whose ``erratum`` says its peers' ``cpu_s`` is wrong has those figures dropped."""
    rows = []
    for p in paths:
        d = json.loads(Path(p).read_text())
        a = d.get("args", {})
        bad_cpu = "cpu_s" in d.get("erratum", "")
        for r in d["rows"]:
            r = {**r, "source": Path(p).name}
            if not r.get("volume") and r["case"].startswith("seed"):
                r["volume"] = f"{a['nz']}x{a['nxy']}"
            if bad_cpu and r["method"] in (*BM4D, "n2v2", "n2n"):
                r.pop("cpu_s", None)
            rows.append(r)
    return rows


def report(rows: list[dict[str, Any]], name: str, args: dict[str, Any],
           total: float | None) -> None:
    """Print the summary table, write ``results/NAME.json`` and the PSNR-minutes PNG."""
    summary = summarise([r for r in rows if r["case"].startswith("seed")])
    real = [r for r in rows if not r["case"].startswith("seed")]
    cols = ["noise", "method", "budget", "n", "psnr", "ssim", "dPSNR_bm4d", "dPSNR_care",
            "lattice_y", "lattice_z", "anisotropy", "dice_lattice", "porosity_err",
            "dice_phases", "dice_phases_fixed", "frc_z_px", "frc_y_px", "true_mse_raw", "tf_mse",
            "wall_s", "cpu_s", "note"]
    print(table(summary, cols))
    agreement = rank_agreement(rows)
    print("truth-free vs true MSE, Spearman rank correlation over methods per case:", agreement)
    if real:
        print(table(real, ["case", "method", "budget_min", "tf_mse", "frc_z_px", "frc_y_px",
                           "wall_s", "skipped"]))
    extra: dict[str, Any] = {}
    if total is not None:
        extra["note"] = load_note(int(args.get("threads", 2)))
        print(f"total {total / 60:.1f} min; {extra['note']}")
    path = write_json(name, {"args": args, "rows": rows, "summary": summary,
                             "truth_free_rank_agreement": agreement, "total_s": total, **extra})
    partial = RESULTS / f"{name}-partial.json"
    partial.unlink(missing_ok=True)
    if summary:
        png = RESULTS / f"{name}.png"
        plot(summary, png)
        print(f"wrote {path} and {png}")
    else:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
