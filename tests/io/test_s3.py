"""Object storage: a real S3-compatible ``moto_server`` process started by the tests (issue 15).

Reading complete stores from ``s3://`` URLs, the completion protocol without rename (an
interrupted upload or an invalidated store is never read as complete), overwrite, the remote
lock, and a whole ``tomochunk run`` from and into a bucket that is killed and resumed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import tomochunk as tc
from tomochunk.cli import main
from tomochunk.errors import (
    ConfigError,
    CorruptStoreError,
    IncompleteStoreError,
    InputError,
    LockedError,
    OutputExistsError,
)
from tomochunk.io import store, urls
from tomochunk.io.lock import exclusive
from tomochunk.io.urls import is_url, local_path, parse_storage_options

s3fs = pytest.importorskip("s3fs")
MOTO = Path(sys.executable).parent / "moto_server"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3():
    if not MOTO.exists() and shutil.which("moto_server") is None:
        pytest.skip("moto[server] is not installed")
    port = _free_port()
    proc = subprocess.Popen([str(MOTO) if MOTO.exists() else "moto_server", "-H", "127.0.0.1",
                             "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(endpoint, timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        opts = {"key": "testing", "secret": "testing", "endpoint_url": endpoint,
                "client_kwargs": {"region_name": "us-east-1"}}
        import boto3

        boto3.client("s3", aws_access_key_id="testing", aws_secret_access_key="testing",
                     endpoint_url=endpoint, region_name="us-east-1").create_bucket(
                         Bucket="tomochunk-test")
        fs = s3fs.S3FileSystem(**opts)
        yield fs, opts
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _upload(fs, tmp_path: Path, name: str, px: float = 0.5) -> tuple[str, np.ndarray]:
    rng = np.random.default_rng(3)
    full = rng.normal(size=(8, 40, 40)).astype(np.float32)
    split = rng.normal(size=(2, 8, 40, 40)).astype(np.float32)
    ds = xr.Dataset({"full": (("z", "y", "x"), full),
                     "split": (("split", "z", "y", "x"), split)}).chunk({"z": 4})
    local = tmp_path / name
    store.write_dataset(ds, local, attrs={"pixel_size_um": px})
    fs.put(str(local), f"tomochunk-test/{name}", recursive=True)
    return f"s3://tomochunk-test/{name}", full


def test_url_helpers():
    assert is_url("s3://b/x.zarr") and is_url("https://h/x.zarr")
    assert not is_url("/data/x.zarr") and not is_url("file:///data/x.zarr")
    assert local_path("file:///data/x.zarr") == "/data/x.zarr"
    assert parse_storage_options(["anon=true", "endpoint_url=http://h:9000", "n=3"]) == {
        "anon": True, "endpoint_url": "http://h:9000", "n": 3}
    with pytest.raises(ConfigError):
        parse_storage_options(["novalue"])


def test_file_urls_are_local_paths(tmp_path):
    url = f"file://{tmp_path}/v.zarr"
    assert store.write_dataset(_volume(6), url) == tmp_path / "v.zarr"
    assert store.is_complete(url) and store.is_complete(tmp_path / "v.zarr")
    np.testing.assert_array_equal(store.open_store(url)["v"].values, _volume(6)["v"].values)
    with pytest.raises(OutputExistsError):
        store.check_output_path(url)


def test_open_store_from_bucket(s3, tmp_path):
    fs, opts = s3
    url, full = _upload(fs, tmp_path, "recon.zarr")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        ds = store.open_store(url, storage_options=opts, required=("full", "split"))
    assert ds["split"].dims == ("split", "z", "y", "x")
    np.testing.assert_array_equal(ds["full"].values, full)
    with pytest.raises(InputError, match="cannot be opened"):
        store.open_store("s3://tomochunk-test/nope.zarr", storage_options=opts)


def test_incomplete_remote_store_is_refused(s3, tmp_path):
    fs, opts = s3
    url, _ = _upload(fs, tmp_path, "partial.zarr")
    key = "tomochunk-test/partial.zarr/zarr.json"
    meta = json.loads(fs.cat(key))
    meta["attributes"].pop(store.COMPLETE_ATTR)
    fs.pipe(key, json.dumps(meta).encode())
    with pytest.raises(IncompleteStoreError):
        store.open_store(url, storage_options=opts)


def test_export_from_bucket_cli(s3, tmp_path):
    fs, opts = s3
    url, full = _upload(fs, tmp_path, "denoised-src.zarr", px=0.5)
    args = ["export", url, "--format", "hdf5", "--out", str(tmp_path / "d.h5"), "-q",
            "--storage-option", "key=testing", "--storage-option", "secret=testing",
            "--storage-option", f"endpoint_url={opts['endpoint_url']}"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    with h5py.File(tmp_path / "d.h5") as f:
        np.testing.assert_array_equal(f["volume"][...], full)
        assert f["volume"].attrs["pixel_size_um"] == 0.5
    res = CliRunner().invoke(main, ["export", url, "--format", "hdf5"])  # no --out
    assert res.exit_code == 2 and "--out" in res.output


def test_export_into_bucket_file_and_folder(s3, tmp_path):
    """Export writes into the bucket too: an HDF5 file in one PUT, a TIFF folder with its
    sidecar last; an existing output is refused without --overwrite and left unchanged."""
    import tifffile

    fs, opts = s3
    url, full = _upload(fs, tmp_path, "exp-src.zarr", px=0.5)
    so = ["--storage-option", "key=testing", "--storage-option", "secret=testing",
          "--storage-option", f"endpoint_url={opts['endpoint_url']}", "-q"]
    h5_url = "s3://tomochunk-test/exports/d.h5"
    res = CliRunner().invoke(main, ["export", url, "--format", "hdf5", "--out", h5_url, *so])
    assert res.exit_code == 0, res.output
    fs.get_file("tomochunk-test/exports/d.h5", str(tmp_path / "back.h5"))
    with h5py.File(tmp_path / "back.h5") as f:
        np.testing.assert_array_equal(f["volume"][...], full)
        assert f["volume"].attrs["pixel_size_um"] == 0.5
    before = fs.cat_file("tomochunk-test/exports/d.h5")
    res = CliRunner().invoke(main, ["export", url, "--format", "hdf5", "--out", h5_url, *so])
    assert res.exit_code == 2 and "already exists; pass --overwrite" in res.stderr
    assert fs.cat_file("tomochunk-test/exports/d.h5") == before

    tif_url = "s3://tomochunk-test/exports/tiffs"
    for extra in ([], ["--overwrite"]):  # written, then replaced
        res = CliRunner().invoke(main, ["export", url, "--format", "tiff", "--out", tif_url,
                                        *so, *extra])
        assert res.exit_code == 0, res.output
    names = sorted(p.rsplit("/", 1)[-1] for p in fs.ls("tomochunk-test/exports/tiffs"))
    tifs = [n for n in names if n.endswith(".tif")]
    assert len(tifs) == full.shape[0] and len(names) == len(tifs) + 1  # + the sidecar JSON
    fs.get_file(f"tomochunk-test/exports/tiffs/{tifs[1]}", str(tmp_path / "s1.tif"))
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "s1.tif"), full[1])


# --------------------------------------------------------------------------------------
# writing: the completion protocol without rename


def _volume(seed: int, extra: bool = False) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    data = {"v": (("z", "y", "x"), rng.normal(size=(8, 16, 16)).astype(np.float32))}
    if extra:
        data["w"] = (("z", "y", "x"), np.ones((8, 16, 16), np.float32))
    return xr.Dataset(data).chunk({"z": 4})


def _objects(fs, prefix: str) -> dict[str, tuple[int, str]]:
    """Every object under ``prefix`` with its size and ETag (the bucket's bytes)."""
    fs.invalidate_cache()
    return {k: (v["size"], v.get("ETag")) for k, v in fs.find(prefix, detail=True).items()}


def test_remote_write_is_complete_only_when_published(s3):
    fs, opts = s3
    url = "s3://tomochunk-test/w/vol.zarr"
    ds = _volume(1)
    with pytest.raises(RuntimeError, match="boom"):
        with store.atomic_store(url, storage_options=opts) as tmp:
            ds.to_zarr(str(tmp), mode="w", zarr_format=3, consolidated=False)
            raise RuntimeError("boom")
    assert not fs.exists("tomochunk-test/w/vol.zarr")  # a failed write uploads nothing
    assert store.write_dataset(ds, url, storage_options=opts) == url
    assert store.is_complete(url, opts)
    np.testing.assert_array_equal(store.open_store(url, storage_options=opts)["v"].values,
                                  ds["v"].values)
    # the state an upload killed before its last PUT leaves: every object but the root
    # zarr.json (which holds the completion attribute and the consolidated metadata)
    fs.rm_file("tomochunk-test/w/vol.zarr/zarr.json")
    assert fs.exists("tomochunk-test/w/vol.zarr/v/zarr.json")
    assert not store.is_complete(url, opts)
    with pytest.raises(InputError, match="cannot be opened"):
        store.open_store(url, storage_options=opts)
    with pytest.raises(OutputExistsError, match="incomplete"):
        store.write_dataset(ds, url, storage_options=opts)
    store.write_dataset(_volume(2), url, storage_options=opts, overwrite=True)
    assert store.is_complete(url, opts)
    np.testing.assert_array_equal(store.open_store(url, storage_options=opts)["v"].values,
                                  _volume(2)["v"].values)
    # a chunk lost in the bucket is caught by the chunk manifest (zarr would read zeros)
    fs.rm_file("tomochunk-test/w/vol.zarr/v/c/1/0/0")
    with pytest.raises(CorruptStoreError, match="chunk v/c/1/0/0 is missing"):
        store.open_store(url, storage_options=opts)


def test_overwrite_invalidates_the_old_store_first(s3):
    fs, opts = s3
    url = "s3://tomochunk-test/o/vol.zarr"
    old = _volume(3, extra=True)
    store.write_dataset(old, url, storage_options=opts)
    before = _objects(fs, "tomochunk-test/o/vol.zarr")
    with pytest.raises(OutputExistsError, match="already exists"):
        store.write_dataset(_volume(4), url, storage_options=opts)
    assert _objects(fs, "tomochunk-test/o/vol.zarr") == before  # refused: bytes unchanged
    # a new store that fails while it is written leaves the old one complete and untouched
    bad = _volume(4)
    bad["v"] = bad["v"].copy(data=bad["v"].data.map_blocks(_fail_block, dtype=np.float32))
    with pytest.raises(ValueError, match="a chunk failed"):
        store.write_dataset(bad, url, storage_options=opts, overwrite=True)
    assert _objects(fs, "tomochunk-test/o/vol.zarr") == before
    assert store.is_complete(url, opts)
    # invalidation (the first step of an overwrite) strips the completion attribute and the
    # consolidated metadata while the chunks are still there: never a stale complete store
    assert urls.invalidate(url, opts)
    assert fs.exists("tomochunk-test/o/vol.zarr/v/c/0/0/0")
    root = json.loads(fs.cat_file("tomochunk-test/o/vol.zarr/zarr.json"))
    assert store.COMPLETE_ATTR not in root["attributes"]
    assert "consolidated_metadata" not in root
    with pytest.raises(IncompleteStoreError):
        store.open_store(url, storage_options=opts)
    # a complete overwrite replaces every object: nothing of the old store's extra variable
    store.write_dataset(_volume(5), url, storage_options=opts, overwrite=True)
    ds = store.open_store(url, storage_options=opts)
    assert list(ds.data_vars) == ["v"]
    assert not fs.exists("tomochunk-test/o/vol.zarr/w")
    np.testing.assert_array_equal(ds["v"].values, _volume(5)["v"].values)


def _fail_block(block: np.ndarray) -> np.ndarray:
    raise ValueError("a chunk failed")


def test_remote_lock_is_exclusive_and_stale_locks_clear(s3, tmp_path):
    fs, opts = s3
    url = "s3://tomochunk-test/locked/run"
    lock_key = "tomochunk-test/locked/.run.tomochunk-lock"
    ready = tmp_path / "ready"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import json, sys, time, pathlib\n"
        "from tomochunk.io.lock import exclusive\n"
        f"with exclusive({url!r}, 'run folder', json.loads(sys.argv[1])):\n"
        f"    pathlib.Path({str(ready)!r}).touch()\n"
        "    time.sleep(60)\n"), json.dumps(opts)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])})
    try:
        for _ in range(300):
            if ready.exists() or holder.poll() is not None:
                break
            time.sleep(0.1)
        assert ready.exists(), "the lock holder did not start"
        with pytest.raises(LockedError, match=f"pid {holder.pid} on host"):
            with exclusive(url, "run folder", opts):
                pass
    finally:
        holder.kill()
        holder.wait()
    assert fs.exists(lock_key)  # a killed holder leaves its lock object ...
    with exclusive(url, "run folder", opts):  # ... which is stale (dead pid here): cleared
        assert json.loads(fs.cat_file(lock_key))["pid"] == os.getpid()
    assert not fs.exists(lock_key)


def test_ingest_cli_into_bucket_and_remote_scan_store_input(s3, tmp_path):
    from ..pipeline.test_pipeline import _write_dxchange

    fs, opts = s3
    src = _write_dxchange(tmp_path / "scan.h5")
    so = ["--storage-option", "key=testing", "--storage-option", "secret=testing",
          "--storage-option", f"endpoint_url={opts['endpoint_url']}"]
    url = "s3://tomochunk-test/ing/scan.zarr"
    res = CliRunner().invoke(main, ["ingest", str(src), url, "-q", *so])
    assert res.exit_code == 0, res.output
    scan = store.open_scan(url, opts)
    with h5py.File(src) as f:
        np.testing.assert_array_equal(scan["projections"].values, f["exchange/data"][...])
    res = CliRunner().invoke(main, ["ingest", str(src), url, "-q", *so])
    assert res.exit_code == 2 and "already exists; pass --overwrite" in res.output
    # a Zarr scan store in the bucket is an input too (streamed, not downloaded)
    again = tc.ingest(url, "s3://tomochunk-test/ing/scan2.zarr", storage_options=opts)
    np.testing.assert_array_equal(again["projections"].values, scan["projections"].values)
    np.testing.assert_array_equal(again["theta"].values, scan["theta"].values)


# --------------------------------------------------------------------------------------
# a whole run from and into the bucket, killed and resumed


def _cli(args: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "tomochunk"), *args],
                          env=_cli_env(), capture_output=True, text=True, **kw)


def _cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _kill_at(p: subprocess.Popen, marker: str, timeout: float) -> tuple[bool, str]:
    """Read ``p``'s stderr; SIGKILL its process group at the first line holding ``marker``.

    Returns whether it was killed there (False: it ended, or ran past ``timeout`` and was
    killed then) and the stderr read.
    """
    watchdog = threading.Timer(timeout, os.killpg, (p.pid, signal.SIGKILL))
    watchdog.start()
    lines: list[str] = []
    try:
        for line in p.stderr:
            lines.append(line)
            if marker in line:
                os.killpg(p.pid, signal.SIGKILL)
                return True, "".join(lines)
        return False, "".join(lines)
    finally:
        watchdog.cancel()
        p.wait()
        p.stderr.close()


@pytest.mark.slow(seconds=58)
def test_run_into_bucket_resumes_after_kill_and_equals_local_run(s3, fast_run, tmp_path):
    """A run from and into the bucket, SIGKILLed once recon is recorded, resumes and ends with
    the same stores as a local run of the same input and config.

    The local reference is the session's ``fast_run`` (same scan file, same config; the
    storage options are in no stage hash), so no second pipeline competes for the CPU. The
    refusals at the end run in-process (no cluster starts).
    """
    from ..pipeline.test_pipeline import FAST, _cfg_file

    fs, opts = s3
    src = fast_run.src
    fs.put_file(str(src), "tomochunk-test/e2e/scan.h5")
    cfg = _cfg_file(tmp_path, {**FAST, "train": {**FAST["train"], "epochs": 4},
                               "io": {"storage_options": {
                                   "endpoint_url": opts["endpoint_url"],
                                   "client_kwargs": opts["client_kwargs"]}}})
    # credentials on the command line: never written to run.json / config.yaml
    creds = ["--storage-option", "key=testing", "--storage-option", "secret=testing"]
    args = ["--config", str(cfg), "--workers", "1", *creds]
    url_in, run = "s3://tomochunk-test/e2e/scan.h5", "s3://tomochunk-test/e2e/run"
    exe = str(Path(sys.executable).parent / "tomochunk")
    stages = ["ingest", "recon", "train", "denoise", "filter:median", "report"]

    _kill_resume_in_bucket(fs, opts, exe, url_in, run, args)
    ref = fast_run.run
    assert list(json.loads((ref / "run.json").read_text())["stages"]) == stages

    for name, var in (("scan.zarr", "projections"), ("recon.zarr", "full"),
                      ("recon.zarr", "split"), ("denoised.zarr", "denoised"),
                      ("median.zarr", "median")):
        remote = store.open_store(f"{run}/{name}", storage_options=opts)[var].values
        local = store.open_store(ref / name)[var].values
        np.testing.assert_allclose(remote, local, rtol=0, atol=0, err_msg=name)
    assert fs.exists("tomochunk-test/e2e/run/report/index.html")
    record = json.loads(fs.cat_file("tomochunk-test/e2e/run/run.json"))
    assert list(record["stages"]) == stages
    text = fs.cat_file("tomochunk-test/e2e/run/config.yaml").decode()
    assert "secret: <redacted>" in text and "testing" not in text
    assert "train: 4 epochs" in fs.cat_file("tomochunk-test/e2e/run/tomochunk.log").decode()
    assert not fs.exists("tomochunk-test/e2e/.run.tomochunk-lock")
    # `tomochunk view` reads the bucket run's NGFF pyramids (napari itself is tested locally)
    from tomochunk.view import run_volumes

    vols = run_volumes(run, opts)
    assert [v.name for v in vols] == [v.name for v in run_volumes(ref)]
    assert [v.name for v in vols][:2] == ["full", "denoised"] and "median" in vols[-1].name
    np.testing.assert_array_equal(np.asarray(vols[1].levels[0]),
                                  store.open_store(ref / "denoised.zarr")["denoised"].values)

    # an existing output without --overwrite: refused before any work, bucket untouched
    before = _objects(fs, "tomochunk-test/e2e")
    res = CliRunner().invoke(main, ["filter", f"{run}/recon.zarr", f"{run}/median.zarr",
                                    "--method", "median", "--workers", "1", *creds,
                                    "--storage-option", f"endpoint_url={opts['endpoint_url']}"])
    assert res.exit_code == 2, res.output
    assert "already exists; pass --overwrite" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    res = CliRunner().invoke(main, ["run", str(src), "--out", run, *args])  # another input
    assert res.exit_code == 2 and "belongs to another input" in res.stderr, res.output
    assert _objects(fs, "tomochunk-test/e2e") == before


def _kill_resume_in_bucket(fs, opts, exe: str, url_in: str, run: str, args: list[str]) -> None:
    """Run into the bucket, SIGKILL it (its whole process group) once run.json records recon
    done, and re-run: the finished stages are skipped, the others done."""
    p = subprocess.Popen([exe, "run", url_in, "--out", run, *args], env=_cli_env(),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         start_new_session=True)
    killed, err = _kill_at(p, "recon: full ", timeout=300)
    assert killed, "the run ended before recon was done: " + err[-3000:]
    fs.invalidate_cache()
    assert "recon" in json.loads(fs.cat_file("tomochunk-test/e2e/run/run.json"))["stages"]
    assert store.is_complete(f"{run}/recon.zarr", opts)
    assert not fs.exists("tomochunk-test/e2e/run/denoised.zarr/zarr.json")
    assert fs.exists("tomochunk-test/e2e/.run.tomochunk-lock")  # left by the killed run

    res = _cli(["run", url_in, "--out", run, *args], timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "ingest: complete and configuration unchanged, skipping" in res.stderr
    assert "recon: complete and configuration unchanged, skipping" in res.stderr
    assert "train: starting" in res.stderr and "denoise: starting" in res.stderr
