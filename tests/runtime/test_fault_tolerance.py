"""Fault tolerance with real scheduler and worker processes (issue 8).

A worker killed in the middle of reconstruction or of chunked inference: the job finishes on
the remaining worker and the store equals a run without the fault, bit for bit. A task that
fails on bad data fails the job with a message naming the block and the cause, and leaves no
store marked complete.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

import tomochunk as tc
from tomochunk.errors import InputError
from tomochunk.io import store
from tomochunk.runtime.cluster import connect

from ..cluster_utils import kill_worker, local_cluster, wait_until, worker_processes

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

PRE = tc.PreprocessConfig(stripe="none", center=31.5)
N_Z = 48


def _scan(tmp: Path) -> Path:
    from tomochunk.io.ingest import ingest
    from tomochunk.phantom import ScanSpec, simulate_scan

    scan, _ = simulate_scan(ScanSpec(n_z=N_Z, n_xy=64, n_angles=360, photons=2000, seed=3,
                                     ring_defects=0))
    path = tmp / "scan.zarr"
    ingest(scan, path, config=tc.IngestConfig(rows_per_chunk=2))
    return path


def _chunk_files(store_dir: Path, var: str) -> list[Path]:
    """Chunk files of ``var`` in a Zarr v3 store (default layout ``<var>/c/<i>/<j>/...``)."""
    root = store_dir / var / "c"
    return [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else []


def _written(tmp: Path, name: str, var: str) -> int:
    """Chunk files of ``var`` written so far in the partial (temporary) stores of ``name``."""
    try:
        return sum(len(_chunk_files(d, var)) for d in tmp.glob(f".{name}.partial-*"))
    except OSError:  # the partial store was renamed into place (or removed) while listing
        return 0


class _Killer(threading.Thread):
    """SIGKILL one busy worker (with its nanny) once ``at`` chunk files of ``var`` exist.

    Records how many chunks were written at that moment and which tasks the worker was
    running, so the test can check that the kill really fell in the middle of the job.
    """

    def __init__(self, client, tmp: Path, name: str, var: str, at: int,
                 timeout: float = 300.0) -> None:
        super().__init__(daemon=True)
        self.client, self.tmp, self.name, self.var, self.at = client, tmp, name, var, at
        self.timeout = timeout
        self.procs = worker_processes(client, tmp)  # before the job: pids of both workers
        self.victim: str | None = None
        self.lost: list[str] = []
        self.written_at_kill = -1

    def run(self) -> None:
        t0 = time.time()
        while time.time() - t0 < self.timeout:
            if _written(self.tmp, self.name, self.var) >= self.at:
                busy = {a: ks for a, ks in self.client.processing().items() if ks}
                if busy:
                    self.victim = max(sorted(busy), key=lambda a: len(busy[a]))
                    self.lost = list(busy[self.victim])
                    self.written_at_kill = _written(self.tmp, self.name, self.var)
                    kill_worker(self.procs[self.victim])
                    return
            time.sleep(0.01)


def _run_with_kill(client, tmp: Path, name: str, var: str, n_chunks: int, job) -> _Killer:
    killer = _Killer(client, tmp, name, var, at=max(2, n_chunks // 6))
    killer.start()
    job()
    killer.join(timeout=5)
    assert killer.victim is not None, "the worker was never killed: the job was too fast"
    # the kill fell in the middle: chunks were still missing and the worker was running tasks
    assert killer.written_at_kill < n_chunks, killer.written_at_kill
    assert killer.lost, "the killed worker was running no task"
    # the job finished on the remaining worker (the nanny did not restart the dead one)
    n_left = len(killer.procs) - 1
    assert wait_until(lambda: len(client.scheduler_info()["workers"]) == n_left, timeout=20)
    assert killer.victim not in client.scheduler_info()["workers"]
    return killer


def test_worker_killed_during_reconstruction(tmp_path):
    from tomochunk.recon.volume import reconstruct

    scan = _scan(tmp_path)
    rcfg = tc.ReconConfig(rows_per_block=2)
    n_blocks = N_Z // rcfg.rows_per_block
    with local_cluster(tmp_path, 2) as sf, connect(tc.ClusterConfig(scheduler_file=str(sf))) as c:
        reconstruct(scan, tmp_path / "ref.zarr", preprocess=PRE, config=rcfg)
        assert len(_chunk_files(tmp_path / "ref.zarr", "full")) == n_blocks
        _run_with_kill(c, tmp_path, "faulty.zarr", "full", n_blocks, lambda: reconstruct(
            scan, tmp_path / "faulty.zarr", preprocess=PRE, config=rcfg))
    ref = store.open_store(tmp_path / "ref.zarr")
    faulty = store.open_store(tmp_path / "faulty.zarr")
    for var in ("full", "split"):
        a, b = ref[var].values, faulty[var].values
        assert a.shape == b.shape and np.isfinite(a).all() and a.std() > 0
        assert a.tobytes() == b.tobytes(), f"{var} differs after a worker was killed"


def test_worker_killed_during_inference(tmp_path):
    from tomochunk.inference import denoise
    from tomochunk.recon.volume import reconstruct
    from tomochunk.training.n2i import train

    scan = _scan(tmp_path)
    rec = tmp_path / "recon.zarr"
    reconstruct(scan, rec, preprocess=PRE, config=tc.ReconConfig(rows_per_block=8))
    train(rec, tmp_path / "model", config=tc.TrainConfig(
        depth=6, context=3, patch_size=32, batch_size=2, patches_per_epoch=4, epochs=1,
        patience=None))
    dcfg = tc.DenoiseConfig(chunk_z=2)
    n_chunks = len(range(0, N_Z, dcfg.chunk_z))
    with local_cluster(tmp_path, 2) as sf, connect(tc.ClusterConfig(scheduler_file=str(sf))) as c:
        denoise(rec, tmp_path / "model", tmp_path / "ref.zarr", config=dcfg)
        assert len(_chunk_files(tmp_path / "ref.zarr", "denoised")) == n_chunks
        _run_with_kill(c, tmp_path, "faulty.zarr", "denoised", n_chunks, lambda: denoise(
            rec, tmp_path / "model", tmp_path / "faulty.zarr", config=dcfg))
    a = store.open_store(tmp_path / "ref.zarr")["denoised"].values
    b = store.open_store(tmp_path / "faulty.zarr")["denoised"].values
    assert a.shape == (N_Z, 64, 64) and np.isfinite(a).all() and a.std() > 0
    assert a.tobytes() == b.tobytes(), "denoised differs after a worker was killed"


def test_bad_block_fails_the_job_naming_block_and_cause(tmp_path):
    from tomochunk.recon.volume import reconstruct

    scan = _scan(tmp_path)
    # corrupt one chunk of the raw projections on disk: (angle, row, col) chunks of 2 rows,
    # so row-chunk index 5 holds detector rows 10-11
    chunks = [p for p in _chunk_files(scan, "projections")
              if p.relative_to(scan / "projections" / "c").parts[1] == "5"]
    assert len(chunks) == 1
    # same size as written, so the chunk manifest (which catches resized or missing chunks
    # before any work) lets it through and the codec fails inside the block task
    size = chunks[0].stat().st_size
    chunks[0].write_bytes((b"garbage" * (size // 7 + 1))[:size])
    out = tmp_path / "recon.zarr"
    with local_cluster(tmp_path, 2) as sf, connect(tc.ClusterConfig(scheduler_file=str(sf))):
        with pytest.raises(InputError) as err:
            reconstruct(scan, out, preprocess=PRE, config=tc.ReconConfig(rows_per_block=2))
    msg = str(err.value)
    assert msg.startswith(f"block rows 10-11 of {scan}: cannot read the raw data ("), msg
    assert "decompress" in msg.lower(), msg  # the cause: the codec could not decode the chunk
    assert "damaged" in msg and "ingest" in msg, msg  # the problem and the fix
    assert not out.exists()
    assert not store.is_complete(out)
    assert not list(tmp_path.glob(".recon.zarr.partial-*"))
