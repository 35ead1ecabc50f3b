"""GPU workers: one worker per GPU with resource GPU=1 and its own CUDA_VISIBLE_DEVICES, the
model resident per worker, inference routed to and shared by the GPU workers.

On a machine without GPUs the workers are started with GPU ids anyway (torch then runs on
their CPU), which exercises the cluster layout and the routing; ``needs_gpu`` tests run the
same on real GPUs.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import xarray as xr

import tomochunk.training as T
from tomochunk import inference as infer
from tomochunk.config import ClusterConfig
from tomochunk.errors import ConfigError
from tomochunk.io.store import write_dataset
from tomochunk.runtime import cluster as CLU
from tomochunk.runtime import gpu as CL

needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def recon_and_model(tmp_path_factory):
    rng = np.random.default_rng(1)
    splits = rng.normal(0, 1, (2, 12, 24, 24)).astype(np.float32)
    splits += np.linspace(0, 3, 24, dtype=np.float32)[None, None, None, :]
    d = tmp_path_factory.mktemp("gpu-cluster")
    recon = d / "recon.zarr"
    write_dataset(xr.Dataset({"split": (("split", "z", "y", "x"), splits),
                              "full": (("z", "y", "x"), splits.mean(axis=0))},
                             attrs={"n_splits": 2, "angles_per_split": 90, "filter": "shepp"}
                             ).chunk({"z": 6}), recon)
    model = d / "model"
    T.train(recon, model, network="msd", depth=3, width=1, patch_size=16, batch_size=2,
            patches_per_epoch=4, epochs=1, device="cpu", threads=1, seed=0)
    return recon, model, splits


def _cache(_dask_worker=None):
    info = infer.models._load.cache_info()
    return {"misses": info.misses, "hits": info.hits,
            "gpu": os.environ.get("CUDA_VISIBLE_DEVICES")}


@pytest.mark.slow
def test_gpu_workers_share_inference_with_a_resident_model(tmp_path, recon_and_model) -> None:
    from distributed import Client

    recon, model, splits = recon_and_model
    with CL.gpu_cluster(["0", "1"], use_dask_cuda=False) as cluster, Client(cluster) as client:
        client.wait_for_workers(2, timeout=60)
        info = client.scheduler_info()["workers"].values()
        assert sorted(w["name"] for w in info) == ["gpu-0", "gpu-1"]
        assert all(w["resources"] == {"GPU": 1} for w in info)
        assert sorted(v["gpu"] for v in client.run(_cache).values()) == ["0", "1"]
        assert CL.gpu_resources(client) == {"GPU": 1}
        with client.as_current():
            out = infer.denoise(recon, model, tmp_path / "den.zarr", chunk_z=1)
        caches = list(client.run(_cache).values())
    ref = infer.denoise_array(splits, T.load_model(model))
    np.testing.assert_allclose(out.values, ref, rtol=1e-5, atol=1e-5)
    used = [c for c in caches if c["misses"]]
    assert len(used) == 2  # both GPU workers took chunks
    assert all(c["misses"] == 1 for c in used)  # the model was loaded once per worker
    assert sum(c["hits"] for c in used) == 12 - 2  # and reused by every later chunk


def test_visible_gpus_and_bad_gpu_counts(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    assert CL.visible_gpus() == ["3", "5"]
    assert CL.chosen_gpus(-1) == ["3", "5"] and CL.chosen_gpus(1) == ["3"]
    with pytest.raises(ConfigError, match=r"--gpus 3 but only 2 GPU\(s\) are visible"):
        CL.chosen_gpus(3)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(ConfigError, match="no GPU is visible here"):
        with CLU.connect(ClusterConfig(gpus=-1)):
            pass
    with pytest.raises(ConfigError, match="at least one GPU"):
        CL.gpu_cluster([])


@needs_gpu
def test_gpu_cluster_on_real_gpus(recon_and_model, tmp_path) -> None:
    from distributed import Client

    recon, model, splits = recon_and_model
    with CL.gpu_cluster(CL.visible_gpus()[:1]) as cluster, Client(cluster) as client:
        with client.as_current():
            out = infer.denoise(recon, model, tmp_path / "den.zarr", chunk_z=4)
        devices = client.run(lambda: torch.cuda.device_count())
    assert all(n == 1 for n in devices.values())
    ref = infer.denoise_array(splits, T.load_model(model))
    np.testing.assert_allclose(out.values, ref, rtol=2e-3, atol=2e-3)
