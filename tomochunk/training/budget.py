"""Training for a compute budget: settings and a fixed step count from a throughput probe.

``tomochunk train --budget MINUTES`` (``train.budget_minutes``) must give the same model on
an idle and on a busy machine, so the budget is turned into a **step count** before training
starts, and training then runs exactly that many optimiser steps (the wall-clock
``max_minutes`` is only a safety stop). The steps come from a short probe that times a few
real optimiser steps of the chosen network in **CPU time per thread**
(:func:`time.process_time` divided by the torch threads; on CUDA, synchronised wall time),
which other processes on a shared machine change far less than wall time. The step count is
rounded to a coarse grid (:func:`round_steps`) so probe jitter rarely changes the plan.

The network, patch and batch per budget follow the measurements of
``benchmarks/n2i_ablation.py`` (recorded in ``benchmarks/README.md``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import torch

from ..config import NULL, TrainConfig, replace
from ..runtime.logs import get_logger

__all__ = ["BudgetPlan", "plan_budget", "probe_seconds_per_step", "round_steps",
           "budget_settings", "default_budget_minutes", "SIZE_FIELDS"]

log = get_logger("train")

#: TrainConfig fields a budget chooses (network parameters by their flat names, read with
#: ``TrainConfig.value``); ``tomochunk run`` applies its default budget only when all of
#: them are left at their defaults.
SIZE_FIELDS = ("network", "depth", "width", "unet_depth", "unet_features",
               "unet_space_to_depth", "patch_size",
               "batch_size", "patches_per_epoch", "epochs", "patience", "max_minutes")

#: Validations per budget: the validation loss picks the best weights and detects a run
#: that is still improving, so it is measured this many times (epochs) over the plan.
EPOCHS_PER_PLAN = 20


@dataclass(frozen=True)
class BudgetPlan:
    """The settings a budget picked and how they were estimated.

    Attributes
    ----------
    config : TrainConfig
        The training settings (``epochs`` x ``patches_per_epoch / batch_size`` = ``steps``).
    steps : int
        Optimiser steps.
    seconds_per_step : float
        Probed CPU seconds per thread of one step (incl. its share of validation).
    estimated_minutes : float
        ``steps * seconds_per_step / 60`` on this hardware when not shared.
    """

    config: TrainConfig
    steps: int
    seconds_per_step: float
    estimated_minutes: float

    def describe(self) -> str:
        c = self.config
        p = c.params_of(c.network)
        if c.network == "msd":
            net = f"MSD-{p.depth}"
        elif c.network == "unet":
            net = (f"UNet(depth {p.depth}, {p.features} features"
                   + (f", {p.space_to_depth}x{p.space_to_depth} space-to-depth)"
                      if p.space_to_depth > 1 else ")"))
        else:
            net = f"{c.network}({p})"
        return (f"{net}, {c.patch_size}^2 patches x {c.batch_size}, {c.lr_schedule} lr "
                f"{c.lr:g}, {self.steps} steps ({c.epochs} epochs of "
                f"{c.patches_per_epoch // c.batch_size}); estimated {self.estimated_minutes:.2g} "
                f"min ({self.seconds_per_step:.3f} s/step)")

    def metadata(self) -> dict[str, Any]:
        return {"steps": self.steps, "seconds_per_step": self.seconds_per_step,
                "estimated_minutes": round(self.estimated_minutes, 3)}


def budget_settings(minutes: float, side: int, cuda: bool) -> dict[str, Any]:
    """Network, patch and batch for a budget of ``minutes`` on slices of ``side`` pixels.

    On CPU, a UNet of 2 levels and 32 features on the 2x2 space-to-depth slice, with 96-px
    patches x 8. At equal CPU time (600 CPU-s) it made 2.6x the steps of a plain UNet (3
    levels x 16) and scored 0.7 dB above it, 1.8 dB above MSD-30 and 0.5 dB above BM4D
    (``benchmarks/n2i_networks.py``, recorded in ``benchmarks/README.md``): MSDNet spends its
    CPU time on single-channel dilated convolutions that CPUs run far below their peak, and
    the space-to-depth UNet runs its convolutions on a quarter of the pixels. Slices under
    32 px get one level, under 16 px the plain UNet, under 8 px an MSD-20. On CUDA, where
    MSD's many steps are cheap, MSD-50/100 with large patches and batches (Flenner et al.).
    """
    if cuda:
        return {"network": "msd", "depth": 100 if minutes >= 20 else 50,
                "patch_size": min(side, 256), "batch_size": 16}
    if side < 8:
        return {"network": "msd", "depth": 20, "patch_size": side, "batch_size": 8}
    if side < 16:
        return {"network": "unet", "unet_depth": 1, "unet_features": 16,
                "unet_space_to_depth": 1, "patch_size": side, "batch_size": 8}
    return {"network": "unet", "unet_depth": 2 if side >= 32 else 1, "unet_features": 32,
            "unet_space_to_depth": 2, "patch_size": min(side, 96), "batch_size": 8}


def round_steps(steps: float) -> int:
    """Round ``steps`` down to 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 x 10^k (at least 1).

    The coarse grid makes the plan (and therefore the trained model) the same for probes
    that differ by up to ~20%.
    """
    steps = max(1.0, float(steps))
    exp = 10 ** math.floor(math.log10(steps))
    grid = [m * exp for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10)]
    return max(1, int(round(max(g for g in grid if g <= steps * (1 + 1e-9)))))


def probe_seconds_per_step(cfg: TrainConfig, context: int, patch: int,
                           device: torch.device, n: int = 3) -> float:
    """CPU seconds per thread (CUDA: wall seconds) of one optimiser step of ``cfg``'s network.

    One warm-up step, then the mean of ``n`` timed steps on random data of the training shape.
    The weights are thrown away; torch's global RNG is left as it was.
    """
    from ..nn.registry import build_network, network_params_from_config

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = build_network(cfg.network, context, 1, **network_params_from_config(cfg))
        net.to(device).train()
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        x = torch.randn(cfg.batch_size, context, patch, patch, device=device)
        y = torch.randn(cfg.batch_size, 1, patch, patch, device=device)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.mse_loss(net(x), y).backward()
            opt.step()

        step()
        cuda = device.type == "cuda"
        if cuda:
            torch.cuda.synchronize(device)
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            step()
        if cuda:
            torch.cuda.synchronize(device)
            return (time.perf_counter() - t0) / n
        return (time.process_time() - c0) / n / max(1, torch.get_num_threads())


def plan_budget(cfg: TrainConfig, minutes: float, *, context: int, side: int,
                val_pixels: int, device: torch.device) -> BudgetPlan:
    """Pick settings and a step count that fill ``minutes`` of training on ``device``.

    Parameters
    ----------
    cfg : TrainConfig
        Settings not chosen by the budget (context, loss, lr, schedule, seed...) are kept.
    minutes : float
        The budget.
    context, side : int
        2.5D context and the smaller slice side (patches are clamped to it).
    val_pixels : int
        Pixels of one validation pass (validation slices x pairings x H x W).
    device : torch.device
    """
    chosen = budget_settings(minutes, side, device.type == "cuda")
    trial = cfg.with_values(**chosen)
    patch = trial.patch_size
    sec = probe_seconds_per_step(trial, context, patch, device)
    # one validation pass ~ a forward pass (a third of a step) over val_pixels, per epoch
    val_sec = sec / 3.0 * val_pixels / (trial.batch_size * patch * patch)
    raw_steps = (60.0 * minutes - EPOCHS_PER_PLAN * val_sec) / sec
    steps = round_steps(raw_steps)
    steps_per_epoch = max(1, steps // EPOCHS_PER_PLAN)
    steps = (steps // steps_per_epoch) * steps_per_epoch
    epochs = steps // steps_per_epoch
    planned = replace(
        trial, epochs=epochs, patches_per_epoch=steps_per_epoch * trial.batch_size,
        patience=NULL,  # a fixed budget runs to the end; the best epoch's weights are kept
        max_minutes=cfg.max_minutes if cfg.max_minutes is not None else 3.0 * minutes,
    )
    est = (steps * sec + epochs * val_sec) / 60.0
    return BudgetPlan(planned, steps, sec, est)


def default_budget_minutes(n_voxels: int, threads: int, cuda: bool) -> float:
    """``tomochunk run``'s default budget: 10 minutes for up to ~2 Mvoxel on 2 cores, growing
    with the square root of the volume and shrinking with the cores; 5-60 minutes."""
    per_core = 2.0 if cuda else max(1, threads)
    m = 10.0 * math.sqrt(max(n_voxels, 1) / 2.0e6) * (2.0 / per_core) ** 0.5
    return float(min(60.0, max(5.0, round(m))))


def with_default_budget(cfg: TrainConfig, recon: Any, threads: int | None,
                        storage_options: Any = None) -> TrainConfig:
    """``cfg`` with :func:`default_budget_minutes` when no budget and no training size is set.

    Used by ``tomochunk run``: a user who chose none of :data:`SIZE_FIELDS` (nor a budget)
    gets a budget fitted to the volume and the cores, instead of the open-ended defaults.
    """
    if cfg.budget_minutes is not None:
        return cfg
    default = TrainConfig()
    if any(cfg.value(f) != default.value(f) for f in SIZE_FIELDS):
        return cfg
    import xarray as xr

    from ..io.store import open_dataset
    from ..runtime.threads import thread_count
    from ..training.modelfile import _resolve_device

    ds = (recon if isinstance(recon, xr.Dataset)
          else open_dataset(recon, storage_options=storage_options))
    n_vox = int(math.prod(ds["split"].shape[1:]))
    cores = thread_count("training", requested=threads) or 1
    cuda = _resolve_device(cfg.device).type == "cuda"
    minutes = default_budget_minutes(n_vox, cores, cuda)
    log.info("no training budget or size given: training for a %g-minute budget (%d voxels per "
             "split, %s); set train.budget_minutes or --budget to change it", minutes, n_vox,
             "CUDA" if cuda else f"{cores} cores")
    return replace(cfg, budget_minutes=minutes)
