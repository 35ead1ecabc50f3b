"""The GPU reconstruction path: the shared gridding pipeline, the cufinufft and auto backends."""

from __future__ import annotations

import finufft
import numpy as np
import pytest
import scipy.fft as sfft
import torch

from tomochunk.config import ReconConfig
from tomochunk.errors import BackendUnavailableError
from tomochunk.recon import RECONSTRUCTORS, nufft_fbp
from tomochunk.recon import cufinufft_backend as cb
from tomochunk.recon.fbp import _BATCH_BYTES
from tomochunk.recon.gridrec import (
    FinufftPlans,
    circle_mask,
    fbp_pipeline,
    prepare_fbp,
)

needs_gpu = pytest.mark.skipif(not cb.is_available(), reason="needs a CUDA GPU and cufinufft")


def _reference_fbp(sino, theta, center, *, pad, circle, tomopy_convention, workers=1):
    """The numpy path as it was before the backends shared it (commit db0478f), verbatim in
    its arithmetic: the refactor must reproduce it bit for bit."""
    inp = prepare_fbp(sino, theta, center, pad=pad, circle=circle,
                      tomopy_convention=tomopy_convention)
    geo, sino, centers = inp.geo, inp.sino, inp.centers
    n_angles, n_rows, n_det = sino.shape
    if pad == "edge":
        padded = np.empty(sino.shape[:-1] + (geo.m_pad,), dtype=np.float32)
        padded[..., geo.offset: geo.offset + n_det] = sino
        padded[..., : geo.offset] = sino[..., :1]
        padded[..., geo.offset + n_det:] = sino[..., -1:]
        spec = sfft.rfft(padded, axis=-1, workers=workers)
    else:
        spec = sfft.rfft(sino, n=geo.m_pad, axis=-1, workers=workers)
    k = np.arange(spec.shape[-1])
    shift = np.exp(2j * np.pi * np.outer(centers + geo.offset, k) / geo.m_pad).astype(
        np.complex64)
    spec *= geo.filt * shift
    q = sfft.irfft(spec, n=geo.m_pad, axis=-1, workers=workers)
    half = (geo.length - 1) // 2
    q = np.concatenate([q[..., : half + 1], q[..., geo.m_pad - half:]], axis=-1)
    n_pairs = (n_rows + 1) // 2
    packed = np.zeros((n_pairs, n_angles, geo.length), dtype=np.complex64)
    packed.real = np.moveaxis(q[:, 0::2, :], 1, 0)
    if n_rows > 1:
        packed.imag[: n_rows // 2] = np.moveaxis(q[:, 1::2, :], 1, 0)
    coeffs = sfft.fft(packed, axis=-1, workers=workers, overwrite_x=True)
    coeffs *= geo.factor[None]
    coeffs = coeffs.reshape(n_pairs, -1)
    n = geo.n
    out = np.empty((n_rows, n, n), dtype=np.float32)
    batch = int(max(1, min(n_pairs, _BATCH_BYTES // max(coeffs.shape[1] * 8, 1))))
    for start in range(0, n_pairs, batch):
        stop = min(start + batch, n_pairs)
        plan = finufft.Plan(1, (n, n), n_trans=stop - start, eps=2e-5, isign=1,
                            dtype="complex64", nthreads=workers, upsampfac=1.25)
        plan.setpts(geo.x1, geo.x2)
        img = plan.execute(np.ascontiguousarray(coeffs[start:stop])).reshape(-1, n, n)
        out[2 * start: 2 * stop: 2] = img.real
        n_odd = min(stop, n_rows // 2) - start
        if n_odd > 0:
            out[2 * start + 1: 2 * (start + n_odd): 2] = img.imag[:n_odd]
    if circle:
        out[:, ~circle_mask(n, tomopy_convention=tomopy_convention)] = 0.0
    return out


def _sino(rows: int, n_angles: int = 37, n_det: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    theta = np.linspace(0, np.pi, n_angles, endpoint=False)
    return rng.random((n_angles, rows, n_det)).astype(np.float32), theta


@pytest.mark.parametrize("pad", ["zero", "edge", "none"])
@pytest.mark.parametrize("circle,tomopy_convention", [(False, False), (True, True)])
@pytest.mark.parametrize("rows", [1, 2, 5])
def test_native_bit_identical_after_refactor(pad, circle, tomopy_convention, rows) -> None:
    sino, theta = _sino(rows)
    centers = np.linspace(19.0, 20.3, rows)
    ours = nufft_fbp(sino, theta, centers, pad=pad, circle=circle,
                     tomopy_convention=tomopy_convention, nthreads=1)
    ref = _reference_fbp(sino, theta, centers, pad=pad, circle=circle,
                         tomopy_convention=tomopy_convention)
    assert ours.shape == (rows, 40, 40)
    assert np.array_equal(ours, ref)


class _TorchCpuNufft:
    """finufft fed from the torch array module on CPU, to test :class:`TorchOps` here."""

    def __init__(self, inp):
        self.plans = FinufftPlans(inp.geo, 2e-5, 1.25, 1)

    def __call__(self, coeffs):
        return torch.from_numpy(self.plans(coeffs.numpy()))


@pytest.mark.parametrize("pad,rows", [("zero", 5), ("edge", 2), ("none", 1)])
def test_torch_array_module_matches_numpy(pad, rows) -> None:
    """Every step the GPU backend runs in torch, run on CPU tensors, agrees with numpy."""
    sino, theta = _sino(rows, seed=1)
    inp = prepare_fbp(sino, theta, 19.7, pad=pad, circle=True)
    gpu_like = fbp_pipeline(inp, cb.TorchOps("cpu"), _TorchCpuNufft(inp))
    native = nufft_fbp(sino, theta, 19.7, pad=pad, circle=True, nthreads=1)
    scale = np.abs(native).max()
    assert scale > 0.05
    assert np.abs(gpu_like - native).max() <= 1e-5 * scale


def test_auto_backend_is_native_without_gpu() -> None:
    if cb.is_available():
        pytest.skip("this machine has a GPU: auto runs cufinufft")
    sino, theta = _sino(3, seed=2)
    cfg = ReconConfig(backend="auto")
    auto = RECONSTRUCTORS.get("auto")(sino, theta, 19.5, cfg, nthreads=1)
    native = RECONSTRUCTORS.get("native")(sino, theta, 19.5, cfg, nthreads=1)
    assert np.array_equal(auto, native)


def test_cufinufft_unavailable_without_gpu_says_what_to_install() -> None:
    if cb.is_available():
        pytest.skip("this machine has a GPU")
    assert RECONSTRUCTORS.available()["cufinufft"] is False
    with pytest.raises(BackendUnavailableError, match="pip install cufinufft"):
        RECONSTRUCTORS.get("cufinufft")


@needs_gpu
def test_gpu_matches_native() -> None:
    sino, theta = _sino(7, n_angles=91, n_det=64, seed=3)
    cfg = ReconConfig(backend="cufinufft", circle=True)
    gpu = RECONSTRUCTORS.get("cufinufft")(sino, theta, 31.6, cfg)
    native = RECONSTRUCTORS.get("native")(sino, theta, 31.6, cfg, nthreads=1)
    scale = np.abs(native).max()
    assert np.abs(gpu - native).max() <= 2e-4 * scale
