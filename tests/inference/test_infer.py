"""Chunked Noise2Inverse inference: exactness (threads, LocalCluster, real processes),
in-plane tiling, transfer checks on another phantom, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import warnings
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import torch
import xarray as xr

from tomochunk.config import DenoiseConfig
from tomochunk.errors import InputError, ModelError, OutputExistsError
from tomochunk.inference import (
    check_transfer,
    denoise,
    denoise_array,
    estimate_split_noise,
    merge_splits,
    tile_windows,
)
from tomochunk.io.store import is_complete, write_dataset
from tomochunk.n2i import estimate_noise_sigma
from tomochunk.nn.registry import build_network
from tomochunk.training.modelfile import FORMAT_VERSION, TrainedModel, denoise_volume_inprocess

SHAPE = (13, 24, 24)  # 13 slices: chunk_z 4 leaves a last chunk of 1 slice < halo 2


def _model(context: int = 5, k: int = 2, strategy: str = "X:1", depth: int = 4,
           noise: float = 0.05, seed: int = 0, **meta_extra) -> TrainedModel:
    """A small real MSDNet with random (non-zero) weights and complete metadata."""
    torch.manual_seed(seed)
    net = build_network("msd", context, 1, depth=depth)
    with torch.no_grad():
        net.final_weight.normal_(0, 0.5)
        net.final_bias.fill_(0.01)
    meta = {
        "format_version": FORMAT_VERSION, "network": "msd",
        "network_params": {"depth": depth, "width": 1}, "in_channels": context,
        "context": context, "n_splits": k, "strategy": strategy, "angles_per_split": 90,
        "filter": "shepp", "pixel_size_um": 0.5, "noise_sigma": noise,
        "norm": {"input": {"mean": 0.1, "std": 0.2}, "output": {"mean": 0.1, "std": 0.2}},
        "receptive_radius": int(net.receptive_radius), "train_config": {}, "recon_attrs": {},
        "tomochunk_version": "0.1.0", **meta_extra,
    }
    return TrainedModel(net.eval(), meta)


def _splits(k: int = 2, shape=SHAPE, noise: float = 0.05, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = np.zeros(shape, np.float32)
    truth[:, 6:18, 5:19] = 0.3
    truth[3:10, 9:14, 8:16] = 0.6
    return np.stack([truth + rng.normal(0, noise, shape) for _ in range(k)]).astype(np.float32)


def _store(path: Path, splits: np.ndarray, chunk_z: int = 5, **attrs) -> Path:
    k, n_z, h, w = splits.shape
    coords = {"z": np.arange(n_z) * 0.5, "y": np.arange(h) * 0.5, "x": np.arange(w) * 0.5}
    ds = xr.Dataset(
        {"full": (("z", "y", "x"), da.from_array(splits.mean(0), chunks=(chunk_z, -1, -1))),
         "split": (("split", "z", "y", "x"), da.from_array(splits, chunks=(1, chunk_z, -1, -1)))},
        coords=coords,
        attrs={"n_splits": k, "angles_per_split": 90, "filter": "shepp", "pixel_size_um": 0.5,
               **attrs},
    )
    write_dataset(ds, path)
    return path


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A model directory written by the real save_model, its splits and its recon store."""
    root = tmp_path_factory.mktemp("infer")
    splits = _splits()
    model = _model(noise=float(estimate_noise_sigma(splits)))
    model.save(root / "model")
    _store(root / "recon.zarr", splits)
    return {"root": root, "model": model, "splits": splits,
            "ref": denoise_array(splits, model)}


# ----------------------------------------------------------------------------- numpy core


@pytest.mark.parametrize("strategy", ["X:1", "1:X"])
@pytest.mark.parametrize("k", [2, 3])
def test_denoise_array_matches_training_reference(strategy, k):
    splits = _splits(k=k)
    model = _model(k=k, strategy=strategy)
    out = denoise_array(splits, model, ensemble=1)
    assert out.shape == SHAPE and out.dtype == np.float32
    np.testing.assert_allclose(out, denoise_volume_inprocess(model, splits), atol=1e-6)


def test_denoise_array_averages_the_k_pairings():
    splits = _splits(k=2)
    model = _model(context=1)
    one = model.predict(splits[1][:, None])  # pairing 0: X:1 input = split 1
    two = model.predict(splits[0][:, None])
    np.testing.assert_allclose(denoise_array(splits, model, ensemble=1), (one + two) / 2,
                               atol=1e-6)


# ----------------------------------------------------------------------------- chunked == whole


@pytest.mark.parametrize("chunk_z", [1, 2, 4, 6, 13, 20])
def test_chunked_equals_whole_threads(saved, chunk_z):
    out = denoise(saved["root"] / "recon.zarr", saved["root"] / "model", chunk_z=chunk_z)
    assert isinstance(out.data, da.Array) and out.chunks[0][0] == min(chunk_z, 13)
    np.testing.assert_allclose(out.values, saved["ref"], atol=1e-5, rtol=0)


def test_writes_store_with_coords(saved, tmp_path):
    out_path = tmp_path / "denoised.zarr"
    res = denoise(saved["root"] / "recon.zarr", saved["root"] / "model", out_path, chunk_z=4)
    assert is_complete(out_path)
    assert res.name == "denoised" and res.dims == ("z", "y", "x") and res.dtype == np.float32
    np.testing.assert_allclose(res.values, saved["ref"], atol=1e-5)
    np.testing.assert_array_equal(res.z.values, np.arange(13) * 0.5)
    assert res.attrs["tiling_exact"] and res.attrs["chunk_z"] == 4
    assert res.attrs["recon_pixel_size_um"] == 0.5 and res.attrs["transfer_mismatches"] == []
    with pytest.raises(OutputExistsError, match="--overwrite"):
        denoise(saved["root"] / "recon.zarr", saved["root"] / "model", out_path)


@pytest.mark.cluster
def test_chunked_equals_whole_local_cluster(saved, tmp_path):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        out = denoise(saved["root"] / "recon.zarr", saved["root"] / "model",
                      tmp_path / "d.zarr", chunk_z=3)
        np.testing.assert_allclose(out.values, saved["ref"], atol=1e-5, rtol=0)
        # the model was loaded at most once per worker process (5 tasks on 2 workers)
        loads = client.run(lambda: __import__("tomochunk.inference.models")
                           .inference.models._load.cache_info().misses)
        assert sorted(loads.values()) in ([1, 1], [0, 1])
        # a model object (not a path) is shipped once and works too
        lazy = denoise(saved["root"] / "recon.zarr", saved["model"], chunk_z=5)
        np.testing.assert_allclose(lazy.compute().values, saved["ref"], atol=1e-5)


def _wait_for_file(path: Path, procs, timeout: float = 60) -> None:
    t0 = time.time()
    while not path.exists():
        if any(p.poll() is not None for p in procs) or time.time() - t0 > timeout:
            raise RuntimeError("dask scheduler did not start")
        time.sleep(0.2)


@pytest.mark.cluster
def test_chunked_equals_whole_real_scheduler_and_workers(saved, tmp_path):
    """A real ``dask scheduler`` and two ``dask worker`` processes started here."""
    from distributed import Client

    dask_cli = str(Path(sys.executable).with_name("dask"))
    sched_file = tmp_path / "scheduler.json"
    procs = []
    logs = [open(tmp_path / f"log{i}.txt", "w") for i in range(3)]  # noqa: SIM115
    try:
        procs.append(subprocess.Popen(
            [dask_cli, "scheduler", "--scheduler-file", str(sched_file), "--port", "0",
             "--dashboard-address", ":0"], stdout=logs[0], stderr=subprocess.STDOUT))
        _wait_for_file(sched_file, procs)
        for i in (1, 2):
            procs.append(subprocess.Popen(
                [dask_cli, "worker", "--scheduler-file", str(sched_file), "--nthreads", "1",
                 "--nworkers", "1", "--no-dashboard"], stdout=logs[i],
                stderr=subprocess.STDOUT))
        with Client(scheduler_file=str(sched_file), timeout="60s") as client:
            client.wait_for_workers(2, timeout=90)
            assert len(client.scheduler_info()["workers"]) == 2
            for chunk_z in (2, 5):
                out = denoise(saved["root"] / "recon.zarr", saved["root"] / "model",
                              tmp_path / f"d{chunk_z}.zarr", chunk_z=chunk_z)
                np.testing.assert_allclose(out.values, saved["ref"], atol=1e-5, rtol=0)
            loads = client.run(
                lambda: __import__("tomochunk.inference.models")
                .inference.models._load.cache_info().misses)
            assert len(loads) == 2 and max(loads.values()) <= 1
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in reversed(procs):
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in logs:
            f.close()


# ----------------------------------------------------------------------------- tiling


def test_tile_windows_blend_weights_sum_to_one():
    for n, tile, halo in [(50, 16, 4), (37, 10, 3), (20, 8, 4)]:
        total = np.zeros(n)
        for e0, e1, w in tile_windows(n, tile, halo, blend=True):
            total[e0:e1] += w
        np.testing.assert_allclose(total, 1.0, atol=1e-12)
        total[:] = 0
        for e0, e1, w in tile_windows(n, tile, halo, blend=False):
            total[e0:e1] += w
        np.testing.assert_array_equal(total, 1.0)


def test_tiling_exact_with_receptive_halo_and_blended_approximation():
    splits = _splits(shape=(5, 64, 64))
    model = _model(depth=3, context=3)  # receptive radius 6
    ref = denoise_array(splits, model)
    exact = denoise_array(splits, model, tile=16)  # halo defaults to the receptive radius
    np.testing.assert_allclose(exact, ref, atol=1e-5)
    blended = denoise_array(splits, model, tile=16, tile_halo=3)
    cropped_no_halo = denoise_array(splits, model, tile=16, tile_halo=0)
    err_blend = np.abs(blended - ref).max()
    assert 0 < err_blend < np.abs(cropped_no_halo - ref).max()


def test_space_to_depth_unet_chunked_and_tiled_equal_whole_volume(tmp_path):
    """The CPU budget's network (a UNet on the 2x2 space-to-depth slice): z-chunked and
    in-plane tiled inference equal whole-slice inference."""
    torch.manual_seed(0)
    net = build_network("unet", 3, 1, depth=2, features=4, space_to_depth=2)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.3)
    meta = _model(context=3).metadata | {
        "network": "unet", "network_params": net.config | {"in_channels": 3},
        "receptive_radius": int(net.receptive_radius)}
    meta["network_params"] = {k: v for k, v in net.config.items()
                              if k not in ("in_channels", "out_channels")}
    model = TrainedModel(net.eval(), meta)
    splits = _splits(shape=(6, 72, 64))
    ref = denoise_array(splits, model)
    np.testing.assert_allclose(denoise_array(splits, model, tile=24), ref, atol=1e-5)
    model.save(tmp_path / "model")
    _store(tmp_path / "recon.zarr", splits)
    out = denoise(tmp_path / "recon.zarr", tmp_path / "model", chunk_z=2)
    np.testing.assert_allclose(out.values, ref, atol=1e-5)


def test_tiling_through_denoise_chunked(saved):
    out = denoise(saved["root"] / "recon.zarr", saved["model"], chunk_z=4, tile=16)
    assert out.attrs["tiling_exact"] and out.attrs["tile_halo"] == saved["model"].metadata[
        "receptive_radius"]
    np.testing.assert_allclose(out.values, saved["ref"], atol=1e-5)


# ----------------------------------------------------------------------------- K and transfer


def test_store_with_multiple_of_k_is_merged(tmp_path):
    splits4 = _splits(k=4)
    model = _model(k=2)
    path = _store(tmp_path / "r4.zarr", splits4, angles_per_split=45)
    merged = merge_splits(splits4, 2)
    np.testing.assert_allclose(merged[0], (splits4[0] + splits4[2]) / 2, atol=1e-7)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 45 angles x 2 merged = the model's 90: no warning
        out = denoise(path, model, chunk_z=4, noise_tolerance=10.0)
    np.testing.assert_allclose(out.values, denoise_array(merged, model), atol=1e-5)
    assert out.attrs["n_splits_store"] == 4 and out.attrs["n_splits_model"] == 2


def test_bad_k_context_and_missing_split(tmp_path):
    path3 = _store(tmp_path / "r3.zarr", _splits(k=3))
    with pytest.raises(ModelError, match=r"trained on K=2 splits but .* holds K=3.*--splits 2"):
        denoise(path3, _model(k=2), tmp_path / "o.zarr")
    no_split = xr.Dataset({"full": (("z", "y", "x"), np.zeros(SHAPE, np.float32))})
    write_dataset(no_split, tmp_path / "nosplit.zarr")
    with pytest.raises(InputError, match="no 'split' variable"):
        denoise(tmp_path / "nosplit.zarr", _model(), tmp_path / "o.zarr")
    thin = _store(tmp_path / "thin.zarr", _splits(shape=(3, 24, 24)))
    with pytest.raises(InputError, match="fewer than the model's context of 5"):
        denoise(thin, _model(context=5), tmp_path / "o.zarr")
    with pytest.raises(ModelError, match="does not exist"):
        denoise(path3, tmp_path / "no-model", tmp_path / "o.zarr")
    assert not (tmp_path / "o.zarr").exists()


def test_output_exists_checked_before_model(tmp_path):
    (tmp_path / "o.zarr").mkdir()
    with pytest.raises(OutputExistsError):
        denoise(tmp_path / "missing.zarr", tmp_path / "no-model", tmp_path / "o.zarr")


def _phantom_splits(seed: int, noise: float, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Split volumes of a phantom of the ``cells`` family (tomochunk.phantom), noise added."""
    from tomochunk.phantom import make_truth
    from tomochunk.phantom.spec import ScanSpec

    truth = make_truth(ScanSpec(n_z=12, n_xy=40, seed=seed, kind="cells"))
    truth = truth / truth.max()
    rng = np.random.default_rng(seed + 100)
    splits = np.stack([truth + rng.normal(0, noise, truth.shape) for _ in range(k)])
    return splits.astype(np.float32), truth


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real (tiny) model trained by tomochunk.training on phantom seed 1."""
    from tomochunk.training import n2i

    root = tmp_path_factory.mktemp("transfer")
    splits, _ = _phantom_splits(seed=1, noise=0.1)
    _store(root / "a.zarr", splits, chunk_z=4, pixel_size_um=0.7, angles_per_split=60)
    n2i.train(root / "a.zarr", root / "model", network="msd", depth=6, context=3, epochs=2,
              patch_size=32, batch_size=2, patches_per_epoch=4, device="cpu", threads=1)
    return root


def test_transfer_same_family_other_seed_no_warning(trained):
    splits_b, truth_b = _phantom_splits(seed=2, noise=0.1)
    _store(trained / "b.zarr", splits_b, chunk_z=4, pixel_size_um=0.7, angles_per_split=60)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        out = denoise(trained / "b.zarr", trained / "model", trained / "b-den.zarr",
                      chunk_z=4, strict=True)
    meta = json.loads((trained / "model" / "metadata.json").read_text())
    assert abs(out.attrs["noise_sigma_scan"] - meta["noise_sigma"]) < 0.1 * meta["noise_sigma"]
    from tomochunk.training.modelfile import load_model

    ref = denoise_array(splits_b, load_model(trained / "model"))
    np.testing.assert_allclose(out.values, ref, atol=1e-5)


def test_transfer_mismatch_warns_naming_fields_or_errors_when_strict(trained, caplog):
    splits_c, _ = _phantom_splits(seed=3, noise=0.3)  # 3x the training noise
    _store(trained / "c.zarr", splits_c, chunk_z=4, pixel_size_um=0.35, angles_per_split=60,
           filter="hann")
    with pytest.warns(UserWarning) as rec:
        out = denoise(trained / "c.zarr", trained / "model", chunk_z=6)
    msg = str(rec[0].message)
    assert "filter: model 'shepp', scan 'hann'" in msg
    assert "pixel_size_um: model 0.7, scan 0.35" in msg
    assert "noise_sigma: model 0.1" in msg and "> tolerance 0.5" in msg
    assert "angles_per_split" not in msg
    assert "Retrain on this scan" in msg and any("noise_sigma" in r.message for r in
                                                  caplog.records)
    assert len(out.attrs["transfer_mismatches"]) == 3
    with pytest.raises(ModelError, match="strict mode"):
        denoise(trained / "c.zarr", trained / "model", trained / "c-den.zarr", strict=True)
    assert not (trained / "c-den.zarr").exists()


def test_noise_estimate_from_split_difference():
    splits = _splits(k=2, shape=(20, 48, 48), noise=0.08)
    assert estimate_split_noise(splits) == pytest.approx(0.08, rel=0.05)
    lazy = da.from_array(splits, chunks=(1, 4, -1, -1))
    assert estimate_split_noise(lazy) == pytest.approx(estimate_split_noise(splits))
    ds = xr.Dataset({"split": (("split", "z", "y", "x"), splits)},
                    attrs={"angles_per_split": 90})
    check = check_transfer(ds, _model(noise=0.08).metadata, DenoiseConfig())
    assert check.mismatches == [] and check.noise_scan == pytest.approx(0.08, rel=0.05)


def test_inference_tasks_routed_to_gpu_workers(saved, tmp_path):
    """With one worker advertising ``GPU=1``, every inference task runs on it."""
    from distributed import Client, LocalCluster, Worker

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster:
        cluster.worker_spec["gpu"] = {"cls": Worker,
                                      "options": {"nthreads": 1, "resources": {"GPU": 1}}}
        cluster.sync(cluster._correct_state)
        with Client(cluster) as client:
            client.wait_for_workers(2, timeout=30)
            gpu = [a for a, w in client.scheduler_info()["workers"].items()
                   if w["resources"].get("GPU")]
            assert len(gpu) == 1
            with __import__("distributed").get_task_stream(client) as ts:
                out = denoise(saved["root"] / "recon.zarr", saved["root"] / "model",
                              tmp_path / "g.zarr", chunk_z=3)
            ran = {r["worker"] for r in ts.data if "denoise" in str(r["key"])}
            assert ran == set(gpu)
            assert len([r for r in ts.data if "denoise-" in str(r["key"])]) >= 5
            np.testing.assert_allclose(out.values, saved["ref"], atol=1e-5)
            np.testing.assert_array_equal(out.z.values, np.arange(13) * 0.5)
            assert is_complete(tmp_path / "g.zarr")


def test_accessor_denoise(saved):
    import tomochunk.accessor  # noqa: F401 - registers .tomo
    from tomochunk.io.store import open_recon

    rec = open_recon(saved["root"] / "recon.zarr")
    for out in (rec.tomo.denoise(saved["model"], chunk_z=4),
                rec.split.tomo.denoise(saved["root"] / "model", chunk_z=6)):
        assert out.name == "denoised" and out.dims == ("z", "y", "x")
        np.testing.assert_allclose(out.values, saved["ref"], atol=1e-5)


def test_cli_denoise(saved, tmp_path):
    from click.testing import CliRunner
    from distributed import LocalCluster

    from tomochunk.cli import main
    from tomochunk.io.store import open_store

    out = tmp_path / "den.zarr"
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp://",
                      dashboard_address=":0") as cluster:
        args = ["denoise", str(saved["root"] / "recon.zarr"), str(saved["root"] / "model"),
                str(out), "--chunk-z", "4", "--scheduler", cluster.scheduler_address, "-q"]
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 0, res.output
        np.testing.assert_allclose(open_store(out)["denoised"].values, saved["ref"], atol=1e-5)
        res = CliRunner().invoke(main, [*args, "--strict"])
        assert res.exit_code == 2 and "already exists" in res.output


def test_transfer_on_simulated_and_reconstructed_scans(tmp_path):
    """Scans of the same phantom family (seeds 1, 2) through tomochunk.recon; a noisier scan
    reconstructed with another filter is flagged."""
    from tomochunk.config import PreprocessConfig
    from tomochunk.phantom import simulate_scan
    from tomochunk.phantom.spec import ScanSpec
    from tomochunk.recon.volume import reconstruct
    from tomochunk.training import n2i

    pre = PreprocessConfig(stripe="none", center=23.5)

    def recon(seed: int, photons: float, name: str, filt: str = "shepp") -> Path:
        scan, _ = simulate_scan(ScanSpec(n_z=10, n_xy=48, n_angles=90, seed=seed,
                                         photons=photons, ring_defects=0))
        reconstruct(scan, tmp_path / name, preprocess=pre, splits=2, filter=filt)
        return tmp_path / name

    a, b = recon(1, 500, "a.zarr"), recon(2, 500, "b.zarr")
    c = recon(3, 60, "c.zarr", filt="hann")
    n2i.train(a, tmp_path / "model", network="msd", depth=4, context=3, epochs=1,
              patch_size=32, batch_size=2, patches_per_epoch=2, device="cpu", threads=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        out = denoise(b, tmp_path / "model", tmp_path / "b-den.zarr", chunk_z=4, strict=True)
    assert out.shape == (10, 48, 48) and out.attrs["transfer_mismatches"] == []
    with pytest.warns(UserWarning, match=r"filter: model 'shepp', scan 'hann'.*noise_sigma"):
        denoise(c, tmp_path / "model", chunk_z=4)
    with pytest.raises(ModelError, match="strict mode"):
        denoise(c, tmp_path / "model", tmp_path / "c-den.zarr", strict=True)


def test_angles_per_split_lists_and_merging():
    splits4 = _splits(k=4)
    meta = _model(k=2, noise=float(estimate_noise_sigma(merge_splits(splits4, 2)))).metadata
    ds = xr.Dataset({"split": (("split", "z", "y", "x"), splits4)},
                    attrs={"angles_per_split": [45, 45, 45, 45]})
    assert check_transfer(ds, meta, DenoiseConfig()).mismatches == []  # merged: [90, 90]
    ds.attrs["angles_per_split"] = [30, 30, 30, 30]
    with pytest.warns(UserWarning, match=r"angles_per_split: model 90, scan 60"):
        check = check_transfer(ds, meta, DenoiseConfig())
    assert [m[0] for m in check.mismatches] == ["angles_per_split"]


def test_cuda_without_gpu_is_an_error_before_work(saved, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(InputError, match="device 'cuda' was requested"):
        denoise(saved["root"] / "recon.zarr", saved["root"] / "model", tmp_path / "o.zarr",
                device="cuda")
    assert not (tmp_path / "o.zarr").exists()
