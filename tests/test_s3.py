"""Reading stores from an S3-compatible object store: a real ``moto_server`` process (issue 15).

Scope: complete stores are read from ``s3://`` URLs (``tc.open_store``, ``tomochunk export
--storage-option``); writing stages to buckets is not implemented yet.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from tomochunk.cli import main
from tomochunk.errors import ConfigError, IncompleteStoreError, InputError
from tomochunk.io import store
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
    res = CliRunner().invoke(main, ["export", url, "--format", "hdf5"])  # no local --out
    assert res.exit_code == 2 and "--out" in res.output
