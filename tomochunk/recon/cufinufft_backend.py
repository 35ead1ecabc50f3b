"""GPU reconstructor: the native gridding FBP with ``cufinufft`` and torch on CUDA.

The algorithm is exactly :mod:`tomochunk.recon.gridrec` (Dowd et al. 1999; Marone &
Stampanoni 2012): the same checks, geometry, filter, angular weights, centre phase ramp,
row packing and unpacking (:func:`~tomochunk.recon.fbp.prepare_fbp`,
:func:`~tomochunk.recon.fbp.fbp_pipeline`). Only the array module (torch tensors on the
GPU instead of numpy) and the type-1 NUFFT (``cufinufft``, Shih et al. 2021, instead of
``finufft``) differ, so GPU and CPU results agree to the NUFFT accuracy ``eps``.

``cufinufft`` and torch's CUDA runtime are imported lazily: :func:`is_available` is False
(and the ``cufinufft`` backend is listed as not available) on a machine without them or
without a GPU. Install with ``pip install cufinufft`` next to a CUDA build of torch.

One block runs on a GPU at a time per worker process (a lock per device), so a worker with
several threads never holds two blocks' buffers on one GPU; start one single-threaded worker
per GPU (``--nthreads 1 --resources GPU=1``) so the scheduler places one block per GPU task.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import ReconConfig
from .fbp import FbpInputs, fbp_options, fbp_pipeline, prepare_fbp
from .gridrec import DEFAULT_EPS, check_nufft_params

__all__ = ["is_available", "nufft_fbp_gpu", "reconstruct_block", "reconstruct_block_auto",
           "TorchOps", "CufinufftParams"]

_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


@functools.lru_cache(maxsize=1)
def is_available() -> bool:
    """True when ``cufinufft`` imports and torch sees a CUDA GPU (checked once per process)."""
    try:
        import torch

        if not torch.cuda.is_available():
            return False
        import cufinufft  # noqa: F401
    except Exception:  # noqa: BLE001 - any import failure means "not here"
        return False
    return True


@dataclass(frozen=True)
class CufinufftParams:
    """Parameters of the ``cufinufft`` backend (the ``recon: {cufinufft: {...}}`` section).

    The ``auto`` backend has none of its own: it uses these on a worker with a GPU and the
    ``native`` ones elsewhere.

    Attributes
    ----------
    eps : float
        Relative accuracy requested from cufinufft, 1e-6 <= eps < 0.1.
    upsampfac : float or None
        cufinufft oversampling factor: 1.25 or 2.0; null keeps cufinufft's default (2.0).
    """

    eps: float = DEFAULT_EPS
    upsampfac: float | None = None

    def __post_init__(self) -> None:
        check_nufft_params("cufinufft", self.eps, self.upsampfac, allow_none=True)
        if self.upsampfac is not None:
            object.__setattr__(self, "upsampfac", float(self.upsampfac))


def _device_lock(device: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(device, threading.Lock())


class TorchOps:
    """:class:`~tomochunk.recon.gridrec.NumpyOps` with torch tensors on a CUDA device."""

    def __init__(self, device: Any):
        import torch

        self.torch = torch
        self.device = torch.device(device)

    def asarray(self, a: Any) -> Any:
        if isinstance(a, self.torch.Tensor):
            return a.to(self.device)
        return self.torch.from_numpy(np.ascontiguousarray(a)).to(self.device)

    def to_host(self, a: Any) -> np.ndarray:
        return a.detach().cpu().numpy()

    def empty(self, shape: tuple[int, ...]) -> Any:
        return self.torch.empty(shape, dtype=self.torch.float32, device=self.device)

    def rfft(self, a: Any, n: int) -> Any:
        return self.torch.fft.rfft(a, n=n, dim=-1)

    def irfft(self, a: Any, n: int) -> Any:
        return self.torch.fft.irfft(a, n=n, dim=-1)

    def fft(self, a: Any) -> Any:
        return self.torch.fft.fft(a, dim=-1)

    def concat(self, parts: list[Any]) -> Any:
        return self.torch.cat(parts, dim=-1)

    def pack(self, q: Any, n_rows: int) -> Any:
        torch = self.torch
        n_pairs = (n_rows + 1) // 2
        real = q[:, 0::2, :].movedim(1, 0)
        imag = torch.zeros_like(real)
        if n_rows > 1:
            imag[: n_rows // 2] = q[:, 1::2, :].movedim(1, 0)
        packed = torch.complex(real.contiguous(), imag.contiguous())
        assert packed.shape[0] == n_pairs
        return packed

    def contiguous(self, a: Any) -> Any:
        return a.contiguous()


class CufinufftPlans:
    """Type-1 ``cufinufft`` plans of one geometry, one per batch size."""

    def __init__(self, inp: FbpInputs, ops: TorchOps, eps: float, upsampfac: float | None):
        self.inp, self.ops, self.eps, self.upsampfac = inp, ops, eps, upsampfac
        self.x1 = ops.asarray(inp.geo.x1)
        self.x2 = ops.asarray(inp.geo.x2)
        self.plans: dict[int, Any] = {}

    def __call__(self, coeffs: Any) -> Any:
        import cufinufft

        nt = int(coeffs.shape[0])
        if nt not in self.plans:
            opts: dict[str, Any] = {"gpu_device_id": self.ops.device.index or 0}
            if self.upsampfac is not None:
                opts["upsampfac"] = self.upsampfac
            n = self.inp.geo.n
            plan = cufinufft.Plan(1, (n, n), n_trans=nt, eps=max(self.eps, 1e-6), isign=1,
                                  dtype="complex64", **opts)
            plan.setpts(self.x1, self.x2)
            self.plans[nt] = plan
        return self.plans[nt].execute(coeffs)


def nufft_fbp_gpu(
    sino: np.ndarray,
    theta: np.ndarray,
    center: float | np.ndarray | None = None,
    *,
    device: str = "cuda",
    eps: float = DEFAULT_EPS,
    upsampfac: float | None = None,
    **options: Any,
) -> np.ndarray:
    """:func:`tomochunk.recon.gridrec.nufft_fbp` on a CUDA GPU; same arguments and result.

    ``options`` are the geometry and filter keywords of ``nufft_fbp`` (``n``, ``filter``,
    ``filter_cutoff``, ``filter_order``, ``pad``, ``circle``, ``tomopy_convention``);
    ``upsampfac`` None keeps cufinufft's default (2.0).
    """
    inp = prepare_fbp(sino, theta, center, **options)
    ops = TorchOps(device)
    with _device_lock(str(ops.device)):
        out = fbp_pipeline(inp, ops, CufinufftPlans(inp, ops, eps, upsampfac))
        ops.torch.cuda.synchronize(ops.device)
    return out


def gpu_device() -> str:
    """The CUDA device of this process: ``cuda`` (a worker sees its own GPU as device 0)."""
    return "cuda"


def reconstruct_block(
    sino_block: np.ndarray,
    theta: np.ndarray,
    center: float | np.ndarray,
    config: ReconConfig,
    *,
    nthreads: int | None = None,
) -> np.ndarray:
    """The ``cufinufft`` backend: :func:`nufft_fbp_gpu` with a :class:`ReconConfig`'s options
    and its ``cufinufft`` parameters (:class:`CufinufftParams`)."""
    own = config.params_of("cufinufft")
    return nufft_fbp_gpu(sino_block, theta, center, device=gpu_device(), eps=own.eps,
                         upsampfac=own.upsampfac, **fbp_options(config))


def reconstruct_block_auto(
    sino_block: np.ndarray,
    theta: np.ndarray,
    center: float | np.ndarray,
    config: ReconConfig,
    *,
    nthreads: int | None = None,
) -> np.ndarray:
    """The ``auto`` backend: ``cufinufft`` where this process has a GPU, else ``native``.

    It has no parameters of its own: each of the two reads its own section of ``config``
    (``config.params_of("cufinufft")`` on a GPU, ``config.params_of("native")`` elsewhere).
    """
    if is_available():
        return reconstruct_block(sino_block, theta, center, config, nthreads=nthreads)
    from .gridrec import reconstruct_block as native

    return native(sino_block, theta, center, config, nthreads=nthreads)
