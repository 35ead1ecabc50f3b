"""Training on one device: pinned batches, bf16 autocast (checked against fp32), batch sizes
from GPU memory.

See :mod:`tomochunk.training.cuda` for how training uses them.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch

from ..config import TrainConfig
from ..errors import ConfigError, InputError
from ..runtime.logs import get_logger

__all__ = ["BF16_LOSS_RTOL", "AutocastModule", "autocast_error", "batch_from_memory",
           "choose_dtype", "compare_precision", "max_batch_size", "precision_keeps_loss",
           "to_device"]

log = get_logger("train.cuda")

#: Largest relative difference of the mean late loss for which ``auto`` accepts bf16.
BF16_LOSS_RTOL = 0.02
#: Steps of the fp32/bf16 comparison of ``precision="auto"``.
PRECISION_CHECK_STEPS = 20


def to_device(a: np.ndarray, device: torch.device) -> torch.Tensor:
    """A float32 numpy batch as a tensor on ``device``, through pinned memory on CUDA."""
    t = torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


class AutocastModule(torch.nn.Module):
    """Run ``module`` under autocast (``dtype``) and/or channels-last; float32 output.

    ``state_dict`` and ``load_state_dict`` are the wrapped module's, so checkpoints and model
    files keep the plain network's keys.
    """

    def __init__(self, module: torch.nn.Module, dtype: torch.dtype | None,
                 channels_last: bool = False):
        super().__init__()
        self.module = module
        self.dtype = dtype
        self.channels_last = channels_last
        if channels_last:
            # Module.to accepts memory_format at run time; torch's overloads do not list it
            module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.dtype is None:
            return self.module(x)
        with torch.autocast(x.device.type, dtype=self.dtype):
            y = self.module(x)
        return y.float()

    def state_dict(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return self.module.state_dict(*args, **kwargs)

    def load_state_dict(self, state: Any, strict: bool = True, assign: bool = False) -> Any:
        return self.module.load_state_dict(state, strict=strict, assign=assign)


def compare_precision(
    network: torch.nn.Module,
    data: Any,
    norm: dict[str, dict[str, float]],
    cfg: TrainConfig,
    patch: int,
    device: torch.device,
    dtype: torch.dtype = torch.bfloat16,
    steps: int = PRECISION_CHECK_STEPS,
) -> tuple[list[float], list[float]]:
    """Loss curves of ``steps`` Adam steps of copies of ``network`` in float32 and ``dtype``.

    Both copies start from the same weights and see the same batches (drawn from
    ``numpy.random.default_rng([cfg.seed, -1])``); ``network`` itself is not changed.
    """
    from .loop import _loss_fn

    fn = _loss_fn(cfg.loss)
    curves = []
    for prec in (None, dtype):
        net = AutocastModule(copy.deepcopy(network).to(device), prec)
        opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
        rng = np.random.default_rng([cfg.seed, 2**31])
        losses = []
        for _ in range(steps):
            xb, yb = data.sample_patches(rng, cfg.batch_size, patch)
            x = to_device((xb - norm["input"]["mean"]) / norm["input"]["std"], device)
            y = to_device((yb - norm["output"]["mean"]) / norm["output"]["std"], device)
            opt.zero_grad(set_to_none=True)
            loss = fn(net(x), y)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        curves.append(losses)
    return curves[0], curves[1]


def precision_keeps_loss(fp32: list[float], low: list[float], rtol: float = BF16_LOSS_RTOL) -> bool:
    """Whether the mean of the last half of ``low`` is within ``rtol`` of ``fp32``'s."""
    half = max(1, len(fp32) // 2)
    a, b = float(np.mean(fp32[-half:])), float(np.mean(low[-half:]))
    return math.isfinite(b) and abs(b - a) <= rtol * abs(a)


def autocast_error(network: torch.nn.Module, context: int, device: torch.device,
                   dtype: torch.dtype = torch.bfloat16) -> str | None:
    """Why a training step of a copy of ``network`` fails under autocast, or None if it runs.

    (MSDNet's hand-written backward, for one, multiplies its float32 buffer by the bf16
    output gradient.)
    """
    net = AutocastModule(copy.deepcopy(network).to(device), dtype)
    try:
        net(torch.zeros(1, context, 16, 16, device=device)).square().mean().backward()
    except RuntimeError as exc:
        return str(exc).splitlines()[0]
    return None


def choose_dtype(network: torch.nn.Module, data: Any, norm: dict[str, dict[str, float]],
                  cfg: TrainConfig, patch: int, device: torch.device) -> torch.dtype | None:
    if cfg.precision == "fp32":
        return None
    if cfg.precision == "auto" and (device.type != "cuda" or not torch.cuda.is_bf16_supported()):
        return None
    err = autocast_error(network, cfg.context, device)
    if err is not None:
        if cfg.precision == "bf16":
            raise ConfigError(
                f"precision bf16 does not work with the {cfg.network} network ({err}); use "
                "--precision fp32 or auto"
            )
        log.info("precision auto: bf16 autocast fails for %s (%s) -> fp32", cfg.network, err)
        return None
    if cfg.precision == "bf16":
        return torch.bfloat16
    fp32, bf16 = compare_precision(network, data, norm, cfg, patch, device)
    ok = precision_keeps_loss(fp32, bf16)
    log.info("precision auto: %d steps fp32 loss %.4g, bf16 loss %.4g -> %s",
             len(fp32), np.mean(fp32[len(fp32) // 2:]), np.mean(bf16[len(bf16) // 2:]),
             "bf16" if ok else "fp32")
    return torch.bfloat16 if ok else None


def batch_from_memory(free_bytes: float, fixed_bytes: float, per_sample_bytes: float,
                      fraction: float = 0.8, cap: int | None = None, multiple: int = 1) -> int:
    """Largest batch ``b`` (a multiple of ``multiple``, >= ``multiple``) with
    ``fixed + b * per_sample <= fraction * free``, at most ``cap``."""
    if per_sample_bytes <= 0:
        raise ValueError("per_sample_bytes must be > 0")
    b = int((fraction * free_bytes - fixed_bytes) // per_sample_bytes)
    if cap is not None:
        b = min(b, int(cap))
    return max(multiple, b - b % multiple)


def _step_peak(net: torch.nn.Module, context: int, patch: int, batch: int,
               device: torch.device) -> int:
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    x = torch.zeros(batch, context, patch, patch, device=device)
    net(x).float().square().mean().backward()
    net.zero_grad(set_to_none=True)
    torch.cuda.synchronize(device)
    return int(torch.cuda.max_memory_allocated(device) - base)


def max_batch_size(net: torch.nn.Module, context: int, patch: int, device: torch.device,
                   *, fraction: float = 0.8, cap: int | None = None) -> int:
    """The largest training batch of ``patch``² patches that fits ``fraction`` of free memory.

    Measures one forward/backward step at batch 1 and 2 on ``device`` (CUDA only); ``net``
    should already be wrapped as it will train (autocast, channels-last).
    """
    if device.type != "cuda":
        raise InputError("max_batch_size measures GPU memory; it needs a CUDA device")
    net = net.to(device)
    p1 = _step_peak(net, context, patch, 1, device)
    p2 = _step_peak(net, context, patch, 2, device)
    per_sample = max(p2 - p1, 1)
    free, _total = torch.cuda.mem_get_info(device)
    return batch_from_memory(free, max(p1 - per_sample, 0), per_sample, fraction, cap)
