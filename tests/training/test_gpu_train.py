"""GPU training pieces: data-parallel training (real torch DDP, gloo, 2 CPU processes),
checkpoint/resume under DDP, the wall-clock stop, autocast, pinned batches, batch sizing.

The DDP logic is the same for NCCL on GPUs; the tests marked ``needs_gpu`` run only on a
machine with CUDA.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

import tomochunk.training as T
from tomochunk.config import TrainConfig
from tomochunk.errors import ConfigError
from tomochunk.io.store import write_dataset
from tomochunk.training import cuda as C

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

# an MSD-4 on 24-pixel patches: DDP ranks start in ~3 s, epochs take a fraction of a second
TINY = dict(network="msd", depth=4, width=1, patch_size=24, batch_size=4, patches_per_epoch=8,
            epochs=3, device="cpu", threads=1, seed=0, patience=None)


@pytest.fixture(scope="module")
def recon(tmp_path_factory):
    rng = np.random.default_rng(0)
    zz, yy, xx = np.mgrid[:14, :32, :32]
    truth = np.zeros((14, 32, 32), np.float32)
    for _ in range(8):
        c = rng.uniform([0, 5, 5], [14, 27, 27])
        truth += ((zz - c[0]) ** 2 + (yy - c[1]) ** 2 + (xx - c[2]) ** 2 < 25) * 0.8
    splits = np.stack([truth + rng.normal(0, 0.3, truth.shape) for _ in range(2)])
    ds = xr.Dataset({"split": (("split", "z", "y", "x"), splits.astype(np.float32))},
                    attrs={"n_splits": 2, "angles_per_split": 90, "filter": "shepp"})
    path = tmp_path_factory.mktemp("recon") / "recon.zarr"
    write_dataset(ds.chunk({"z": 7}), path)
    return path


@pytest.fixture(scope="module")
def single(recon):
    """The reference: one process, 3 epochs."""
    return T.train(recon, None, **TINY)


def _max_weight_diff(a, b) -> float:
    sa, sb = a.network.state_dict(), b.network.state_dict()
    return max(float((sa[k] - sb[k]).abs().max()) for k in sa)


@pytest.mark.slow
def test_ddp_two_ranks_equals_one_process_and_resumes(tmp_path, recon, single) -> None:
    """2 gloo ranks, each training on half of every batch, reach the one-process weights and
    validation losses; a 2-epoch DDP run resumed to 3 epochs reaches the same."""
    path = tmp_path / "model"
    two = T.train(recon, path, **{**TINY, "epochs": 2, "data_parallel": 2})
    assert len(two.history["epochs"]) == 2 and (path / "model.pt").exists()
    ck = torch.load(path / "checkpoint.pt", weights_only=True)
    assert ck["epoch"] == 2 and not any(k.startswith("module.") for k in ck["state_dict"])
    three = T.train(recon, path, **{**TINY, "data_parallel": 2, "resume": True})
    assert [e["epoch"] for e in three.history["epochs"]] == [1, 2, 3]
    ref = [e["val_loss"] for e in single.history["epochs"]]
    got = [e["val_loss"] for e in three.history["epochs"]]
    np.testing.assert_allclose(got, ref, rtol=1e-4)
    assert three.history["best_epoch"] == single.history["best_epoch"]
    assert _max_weight_diff(three, single) < 1e-4
    # rank 0's train loss is the loss of its half of each batch: close, not equal
    assert three.history["epochs"][0]["train_loss"] != single.history["epochs"][0]["train_loss"]


@pytest.mark.slow
def test_ddp_wall_clock_stop_is_agreed_by_all_ranks(recon) -> None:
    """A limit smaller than one epoch stops every rank after epoch 1 (no rank hangs); the
    training task runs in a (daemonic) Dask worker process, which starts the ranks."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        m = T.train(recon, None, client=client, **{**TINY, "epochs": 50, "data_parallel": 2,
                                                   "max_minutes": 1e-6})
    assert m.history["stopped"] == "max_minutes"
    assert [e["epoch"] for e in m.history["epochs"]] == [1]


def test_bad_data_parallel_config_fails_before_work(recon) -> None:
    with pytest.raises(ConfigError, match=r"batch_size=4 must be a multiple of data_parallel=3"):
        T.train(recon, None, **{**TINY, "data_parallel": 3})
    with pytest.raises(ConfigError, match=r"precision must be auto, fp32 or bf16"):
        C.check_cuda_config(TrainConfig(precision="fp8"))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"data_parallel must be >= 0"):
        C.check_cuda_config(TrainConfig(data_parallel=-1))


def test_rank_shard_splits_the_same_draw() -> None:
    class Data:
        def sample_patches(self, rng, n, patch):
            x = rng.random((n, 1, patch, patch))
            return x, x[:, :1] * 2

    parts = [C.RankShard(Data(), r, 2).sample_patches(np.random.default_rng(5), 4, 3)
             for r in range(2)]
    whole = Data().sample_patches(np.random.default_rng(5), 4, 3)
    assert np.array_equal(np.concatenate([p[0] for p in parts]), whole[0])
    assert parts[0][0].shape == (2, 1, 3, 3)


def test_autocast_module_keeps_plain_state_dict_and_bf16_cpu_curve() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                              torch.nn.Conv2d(8, 1, 3, padding=1))
    wrapped = C.AutocastModule(net, torch.bfloat16)
    assert list(wrapped.state_dict()) == list(net.state_dict())
    x = torch.randn(2, 3, 16, 16)
    y = wrapped(x)
    assert y.dtype == torch.float32
    ref = net(x)
    err = float((y - ref).abs().max() / ref.abs().max())
    assert 0 < err < 0.05  # bf16 rounding, visible but small

    class Data:
        def sample_patches(self, rng, n, patch):
            x = rng.standard_normal((n, 3, patch, patch)).astype(np.float32)
            return x, x[:, 1:2] * 0.5

    cfg = TrainConfig(batch_size=4, lr=1e-2)
    norm = {"input": {"mean": 0.0, "std": 1.0}, "output": {"mean": 0.0, "std": 1.0}}
    fp32, bf16 = C.compare_precision(net, Data(), norm, cfg, 16, torch.device("cpu"), steps=12)
    assert fp32[-1] < 0.5 * fp32[0]  # it learns
    assert C.precision_keeps_loss(fp32, bf16, rtol=0.2)
    assert not C.precision_keeps_loss([1.0, 1.0], [1.0, 1.5])
    assert not C.precision_keeps_loss([1.0, 1.0], [1.0, float("nan")])


def test_batch_from_memory_arithmetic_and_cpu_batches() -> None:
    gib = 2**30
    # 80 GiB free, 2 GiB fixed, 1.5 GiB per patch: (0.8 * 80 - 2) / 1.5 = 41.3 -> 41
    assert C.batch_from_memory(80 * gib, 2 * gib, 1.5 * gib) == 41
    assert C.batch_from_memory(80 * gib, 2 * gib, 1.5 * gib, multiple=4) == 40
    assert C.batch_from_memory(80 * gib, 2 * gib, 1.5 * gib, cap=16) == 16
    assert C.batch_from_memory(1 * gib, 2 * gib, 1.5 * gib) == 1  # never below one
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = C.to_device(a, torch.device("cpu"))
    assert t.dtype == torch.float32 and np.array_equal(t.numpy(), a)
    assert C.n_ranks(TrainConfig(data_parallel=0), torch.device("cpu")) == 1


@needs_gpu
def test_cuda_training_bf16_channels_last_and_batch_size(recon) -> None:
    m = T.train(recon, None, **{**TINY, "device": "cuda", "precision": "bf16"})
    assert len(m.history["epochs"]) == 3
    net = C.AutocastModule(m.network, torch.bfloat16, channels_last=True)
    b = C.max_batch_size(net, 5, 256, torch.device("cuda"))
    assert b >= 1
    t = C.to_device(np.ones((2, 2), np.float32), torch.device("cuda"))
    assert t.is_cuda


def test_autocast_probe_msd_needs_fp32_unet_takes_bf16(recon) -> None:
    """MSDNet's hand-written backward is float32 only: bf16 is refused before training with a
    one-line error, and ``auto`` falls back to fp32; the UNet trains under autocast."""
    from tomochunk.nn.registry import build_network

    cpu = torch.device("cpu")
    assert "dtype" in C.autocast_error(build_network("msd", 5, 1, depth=3, width=1), 5, cpu)
    assert C.autocast_error(build_network("unet", 5, 1, depth=2, features=8), 5, cpu) is None
    with pytest.raises(ConfigError, match="precision bf16 does not work with the msd network"):
        T.train(recon, None, **{**TINY, "precision": "bf16", "epochs": 1})
    m = T.train(recon, None, **{**TINY, "network": "unet", "unet_depth": 2, "unet_features": 8,
                                "precision": "bf16", "epochs": 1, "patch_size": 16})
    assert np.isfinite(m.history["epochs"][0]["val_loss"])
