"""tomochunk.n2i (pairing, merging, the reference denoiser) and tomochunk.chunks.ZarrSource."""

from __future__ import annotations

import numpy as np
import xarray as xr

from tomochunk.chunks import Slab, ZarrSource
from tomochunk.n2i import context_indices, denoise_slab, denoise_volume, merge_splits, pair_input


class _Linear:
    """A predictor whose output is known: 2 x the centre channel + the mean of the others."""

    def __init__(self, context: int, k: int, strategy: str = "X:1"):
        self.metadata = {"context": context, "n_splits": k, "strategy": strategy}

    def predict(self, x: np.ndarray) -> np.ndarray:
        c = x.shape[1] // 2
        rest = np.delete(x, c, axis=1).mean(axis=1) if x.shape[1] > 1 else 0.0
        return 2.0 * x[:, c] + rest


def test_denoise_volume_is_the_mean_of_the_k_pairings():
    rng = np.random.default_rng(0)
    splits = rng.normal(size=(3, 7, 5, 6)).astype(np.float32)
    model = _Linear(context=3, k=3)
    out = denoise_volume(splits, model, batch_size=2)
    expect = np.zeros(splits.shape[1:])
    for k in range(3):
        inp = pair_input(splits, k, "X:1")
        for z in range(7):
            expect[z] += model.predict(inp[context_indices(z, 7, 3)][None])[0]
    np.testing.assert_allclose(out, expect / 3, rtol=1e-5, atol=1e-6)


def test_denoise_slab_of_a_chunk_equals_the_whole_volume():
    rng = np.random.default_rng(1)
    splits = rng.normal(size=(2, 9, 4, 4)).astype(np.float32)
    model = _Linear(context=5, k=2, strategy="1:X")
    whole = denoise_volume(splits, model)
    info = Slab(lo=1, hi=9, z0=3, z1=7, n_z=9)  # core 3..6 with a halo of 2
    part = denoise_slab(splits[:, 1:9], info, model.predict, context=5, strategy="1:X")
    np.testing.assert_allclose(part, whole[3:7], rtol=1e-6)


def test_merge_splits_averages_interleaved_splits_on_numpy_and_xarray():
    a = np.arange(4 * 2 * 3 * 3, dtype=np.float32).reshape(4, 2, 3, 3)
    merged = merge_splits(a, 2)
    np.testing.assert_allclose(merged, np.stack([(a[0] + a[2]) / 2, (a[1] + a[3]) / 2]))
    da = xr.DataArray(a, dims=("split", "z", "y", "x"))
    np.testing.assert_allclose(merge_splits(da, 2).values, merged)


def test_zarr_source_reads_along_its_axis(tmp_path):
    rng = np.random.default_rng(2)
    proj = rng.normal(size=(5, 8, 6)).astype(np.float32)
    xr.Dataset({"projections": (("angle", "row", "col"), proj)}).to_zarr(
        tmp_path / "s.zarr", zarr_format=3, consolidated=False)
    rows = ZarrSource.open(tmp_path / "s.zarr", "projections", axis=-2)
    zs = ZarrSource.open(tmp_path / "s.zarr", "projections")
    assert rows.shape == (5, 8, 6)
    np.testing.assert_array_equal(rows.read(2, 5), proj[:, 2:5])
    np.testing.assert_array_equal(zs.read(1, 3), proj[1:3])
