"""D4 self-ensemble at inference: the symmetries, the mean of the 8 transformed predictions,
exactness with chunking and in-plane tiling, config and CLI."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tomochunk.config import DenoiseConfig
from tomochunk.errors import ConfigError
from tomochunk.inference import denoise, denoise_array
from tomochunk.inference.ensemble import d4_forward, d4_inverse, ensemble_codes, ensemble_predict
from tomochunk.nn.registry import build_network
from tomochunk.training.dataset import augment
from tomochunk.training.modelfile import FORMAT_VERSION, TrainedModel


def _model(context: int = 3, depth: int = 3, seed: int = 1) -> TrainedModel:
    torch.manual_seed(seed)
    net = build_network("msd", context, 1, depth=depth)
    with torch.no_grad():
        net.final_weight.normal_(0, 0.5)
    meta = {"format_version": FORMAT_VERSION, "network": "msd",
            "network_params": {"depth": depth, "width": 1}, "in_channels": context,
            "context": context, "n_splits": 2, "strategy": "X:1",
            "norm": {"input": {"mean": 0.1, "std": 0.2}, "output": {"mean": 0.1, "std": 0.2}},
            "receptive_radius": int(net.receptive_radius), "noise_sigma": 0.0}
    return TrainedModel(net.eval(), meta)


def _splits(shape=(7, 40, 36), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, np.float32)
    truth[:, 5:30, 8:20] = 0.4  # asymmetric, non-square slices
    return np.stack([truth + rng.normal(0, 0.05, shape) for _ in range(2)]).astype(np.float32)


@pytest.mark.parametrize("code", range(8))
def test_forward_is_the_training_augmentation_and_inverse_undoes_it(code):
    a = np.arange(2 * 3 * 5 * 5, dtype=np.float32).reshape(2, 3, 5, 5)
    np.testing.assert_array_equal(d4_forward(a, code), augment(a, code))
    b = np.arange(2 * 4 * 6, dtype=np.float32).reshape(2, 4, 6)  # non-square
    np.testing.assert_array_equal(d4_inverse(d4_forward(b, code), code), b)


def test_the_eight_codes_are_distinct_symmetries():
    a = np.random.default_rng(0).random((5, 5))
    outs = {d4_forward(a, c).tobytes() for c in range(8)}
    assert len(outs) == 8


def test_ensemble_equals_mean_of_eight_transformed_predictions():
    model = _model()
    splits = _splits()
    x = splits[1][None, :3]  # one 2.5D input (pairing 0: X:1 input = split 1), z 0..2
    manual = np.mean([d4_inverse(model.predict(d4_forward(x, c)), c) for c in range(8)], axis=0)
    got = ensemble_predict(model.predict, x, 8)
    np.testing.assert_allclose(got, manual, atol=1e-6)
    plain = model.predict(x)
    assert np.abs(got - plain).max() > 1e-4  # the ensemble is not the plain prediction


def test_denoise_array_ensemble_is_exact_with_tiling():
    model = _model()
    splits = _splits()
    plain = denoise_array(splits, model, ensemble=1)
    ens = denoise_array(splits, model, ensemble=8)
    tiled = denoise_array(splits, model, ensemble=8, tile=16)  # halo = receptive radius
    np.testing.assert_allclose(tiled, ens, atol=1e-5)
    assert np.abs(ens - plain).max() > 1e-4
    # by hand: the mean over 8 symmetries of the plain N2I denoiser applied to transformed
    # volumes (the inverse-transformed results)
    manual = np.mean([d4_inverse(denoise_array(d4_forward(splits, c), model, ensemble=1), c)
                      for c in range(8)], axis=0)
    np.testing.assert_allclose(ens, manual, atol=1e-5)


def test_chunked_denoise_with_ensemble_equals_whole(tmp_path):
    import dask.array as da
    import xarray as xr

    model = _model()
    splits = _splits()
    ds = xr.Dataset({"split": (("split", "z", "y", "x"),
                               da.from_array(splits, chunks=(1, 3, -1, -1)))})
    out = denoise(ds, model, chunk_z=2, ensemble=8, tile=16)
    assert out.attrs["ensemble"] == 8
    np.testing.assert_allclose(out.values, denoise_array(splits, model, ensemble=8), atol=1e-5)
    one = denoise(ds, model, chunk_z=3, ensemble=1)
    np.testing.assert_allclose(one.values, denoise_array(splits, model, ensemble=1), atol=1e-5)


def test_bad_ensemble_size_is_a_config_error():
    with pytest.raises(ConfigError, match="1, 2, 4 or 8"):
        ensemble_codes(3)
    with pytest.raises(ConfigError, match="ensemble must be 1, 2, 4 or 8"):
        denoise(np.zeros(1), _model(), config=DenoiseConfig(ensemble=5))
    assert DenoiseConfig().ensemble == 1  # off by default: 8x the inference cost
