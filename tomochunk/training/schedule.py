"""Learning-rate schedules with warm-up, and the test for a run that is still improving.

A schedule is a pure function of the global optimiser step, so training resumed from a
checkpoint follows the same learning rates as an uninterrupted run.

- ``constant``: ``lr`` after a linear warm-up.
- ``cosine``: linear warm-up over the first ``warmup`` fraction of the steps, then a cosine
  decay to ``lr * final_fraction`` at the last step (Loshchilov & Hutter 2017, SGDR,
  without restarts).
- ``onecycle``: warm-up from ``lr / 25`` to ``lr``, then cosine annealing to ``lr / 1e4``
  (Smith & Topin 2019), the shape of :class:`torch.optim.lr_scheduler.OneCycleLR`.

Numbers here, the optimiser's ``param_groups`` are set by :func:`set_lr`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ..errors import ConfigError

__all__ = ["SCHEDULES", "lr_at", "set_lr", "still_improving"]

SCHEDULES = ("constant", "cosine", "onecycle")


def lr_at(step: int, total: int, lr: float, schedule: str = "cosine",
          warmup: float = 0.05, final_fraction: float = 0.01) -> float:
    """Learning rate of optimiser step ``step`` (0-based) of ``total``.

    Parameters
    ----------
    step, total : int
        The step and the planned number of steps; steps past ``total`` keep the last rate.
    lr : float
        Peak learning rate.
    schedule : {"constant", "cosine", "onecycle"}
    warmup : float
        Fraction of ``total`` spent warming up linearly (0: none).
    final_fraction : float
        ``cosine``: the rate at the end, relative to ``lr``.
    """
    if schedule not in SCHEDULES:
        raise ConfigError(f"unknown lr_schedule {schedule!r}; use one of {', '.join(SCHEDULES)}")
    total = max(1, int(total))
    step = min(max(0, int(step)), total - 1)
    n_warm = int(round(warmup * total))
    if schedule == "onecycle":
        lo = lr / 25.0
        n_warm = max(1, n_warm)
        if step < n_warm:
            return lo + (lr - lo) * step / n_warm
        t = (step - n_warm) / max(1, total - 1 - n_warm)
        end = lr / 1e4
        return end + (lr - end) * 0.5 * (1 + math.cos(math.pi * t))
    if step < n_warm:
        return lr * (step + 1) / n_warm
    if schedule == "constant":
        return lr
    t = (step - n_warm) / max(1, total - 1 - n_warm)
    end = lr * final_fraction
    return end + (lr - end) * 0.5 * (1 + math.cos(math.pi * t))


def set_lr(opt: torch.optim.Optimizer, value: float) -> None:
    """Set the learning rate of every parameter group."""
    for group in opt.param_groups:
        group["lr"] = value


def still_improving(val_losses: Sequence[float], window: int = 5,
                    rel_tol: float = 1e-3) -> bool:
    """True when the validation loss is still falling at the end of ``val_losses``.

    Falling means: the best loss is among the last ``window`` values, and it is more than
    ``rel_tol`` (relative) below the best loss before them. A run with fewer than
    ``window + 1`` epochs counts as still improving (it never had the chance to level off),
    as long as its last loss is its best.
    """
    v = [float(x) for x in val_losses]
    if not v:
        return False
    if len(v) <= window:
        return v[-1] <= min(v)
    recent, before = min(v[-window:]), min(v[:-window])
    return recent < before * (1.0 - rel_tol)
