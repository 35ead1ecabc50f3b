"""Fault tolerance with real scheduler and worker processes (issue 8).

A worker killed in the middle of reconstruction or of chunked inference: the job finishes on
the remaining worker and the store equals a run without the fault, bit for bit. A task that
fails on bad data fails the job with a message naming the block and the cause, and leaves no
store marked complete.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

import tomochunk as tc
from tomochunk.cluster import connect
from tomochunk.io import store

from .cluster_utils import local_cluster

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

PRE = tc.PreprocessConfig(stripe="none", center=31.5)


def _scan(tmp: Path) -> Path:
    from tomochunk.io.ingest import ingest
    from tomochunk.phantom import ScanSpec, simulate_scan

    scan, _ = simulate_scan(ScanSpec(n_z=48, n_xy=64, n_angles=360, photons=2000, seed=3,
                                     ring_defects=0))
    path = tmp / "scan.zarr"
    ingest(scan, path, config=tc.IngestConfig(rows_per_chunk=2))
    return path


def _kill_one_worker_when(client, pred, timeout: float = 120.0) -> threading.Thread:
    """Background thread: when ``pred()`` holds, SIGKILL one worker and its nanny."""

    def target() -> None:
        t0 = time.time()
        while time.time() - t0 < timeout:
            if pred():
                pids = client.run(os.getpid)
                victim = sorted(pids.values())[0]
                proc = psutil.Process(victim)
                parent = proc.parent()
                if parent is not None and "python" in (parent.name() or ""):
                    os.kill(parent.pid, signal.SIGKILL)  # the nanny: no restart
                os.kill(victim, signal.SIGKILL)
                return
            time.sleep(0.02)

    th = threading.Thread(target=target, daemon=True)
    th.start()
    return th


def _chunks_written(path_glob: str, tmp: Path, var: str) -> int:
    n = 0
    for d in tmp.glob(path_glob):
        n += sum(1 for p in (d / var / "c").rglob("*") if p.is_file()) if (d / var).exists() else 0
    return n


def test_worker_killed_during_reconstruction(tmp_path):
    scan = _scan(tmp_path)
    rcfg = tc.ReconConfig(rows_per_block=2)
    with local_cluster(tmp_path, 2) as sf, connect(tc.ClusterConfig(scheduler_file=str(sf))) as c:
        from tomochunk.recon.volume import reconstruct

        reconstruct(scan, tmp_path / "ref.zarr", preprocess=PRE, config=rcfg)
        th = _kill_one_worker_when(
            c, lambda: _chunks_written(".faulty.zarr.partial-*", tmp_path, "full") >= 3)
        reconstruct(scan, tmp_path / "faulty.zarr", preprocess=PRE, config=rcfg)
        th.join(timeout=1)
        assert not th.is_alive(), "the worker was never killed: the job was too fast"
        assert len(c.scheduler_info()["workers"]) == 1
    for var in ("full", "split"):
        np.testing.assert_array_equal(store.open_store(tmp_path / "ref.zarr")[var].values,
                                      store.open_store(tmp_path / "faulty.zarr")[var].values)


def test_worker_killed_during_inference(tmp_path):
    scan = _scan(tmp_path)
    from tomochunk.infer import denoise
    from tomochunk.recon.volume import reconstruct
    from tomochunk.train.n2i import train

    rec = tmp_path / "recon.zarr"
    reconstruct(scan, rec, preprocess=PRE, config=tc.ReconConfig(rows_per_block=8))
    train(rec, tmp_path / "model", config=tc.TrainConfig(
        depth=6, context=3, patch_size=32, batch_size=2, patches_per_epoch=4, epochs=1,
        patience=None))
    dcfg = tc.DenoiseConfig(chunk_z=2)
    with local_cluster(tmp_path, 2) as sf, connect(tc.ClusterConfig(scheduler_file=str(sf))) as c:
        denoise(rec, tmp_path / "model", tmp_path / "ref.zarr", config=dcfg)
        th = _kill_one_worker_when(
            c, lambda: _chunks_written(".faulty.zarr.partial-*", tmp_path, "denoised") >= 3)
        denoise(rec, tmp_path / "model", tmp_path / "faulty.zarr", config=dcfg)
        th.join(timeout=1)
        assert not th.is_alive(), "the worker was never killed: the job was too fast"
    np.testing.assert_array_equal(store.open_store(tmp_path / "ref.zarr")["denoised"].values,
                                  store.open_store(tmp_path / "faulty.zarr")["denoised"].values)


def test_bad_block_fails_the_job_naming_block_and_cause(tmp_path):
    scan = _scan(tmp_path)
    # corrupt one chunk of the raw projections on disk (rows 10-11: chunk index 5)
    chunk = next(p for p in (scan / "projections" / "c").rglob("*")
                 if p.is_file() and p.relative_to(scan / "projections" / "c").parts[1] == "5")
    chunk.write_bytes(b"garbage" * 10)
    from tomochunk.recon.volume import reconstruct

    out = tmp_path / "recon.zarr"
    with local_cluster(tmp_path, 2) as sf, connect(tc.ClusterConfig(scheduler_file=str(sf))):
        with pytest.raises(Exception, match=r"rows 10[-–:]1[12]") as err:
            reconstruct(scan, out, preprocess=PRE, config=tc.ReconConfig(rows_per_block=2))
    assert "decod" in str(err.value).lower() or "codec" in str(err.value).lower() or \
        "corrupt" in str(err.value).lower() or "error" in str(err.value).lower()
    assert not out.exists()
    assert not store.is_complete(out)
    assert not list(tmp_path.glob(".recon.zarr.partial-*"))
