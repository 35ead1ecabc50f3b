"""Atomic stores (tomochunk.io.store): complete, no overwrite, lz4 floats, failed writes."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import tomochunk as tc
from tomochunk.io import store


def _ds():
    return xr.Dataset({"v": (("z", "y"), np.arange(12, dtype="f4").reshape(3, 4))}).chunk({"z": 1})


def test_atomic_store_complete_and_no_overwrite(tmp_path):
    out = tmp_path / "a.zarr"
    store.write_dataset(_ds(), out, config_hash="abc")
    assert store.is_complete(out)
    assert store.read_attrs(out)[store.HASH_ATTR] == "abc"
    np.testing.assert_array_equal(store.open_store(out)["v"].values, _ds()["v"].values)
    with pytest.raises(tc.OutputExistsError, match="--overwrite"):
        store.write_dataset(_ds() * 2, out)
    assert store.open_store(out)["v"].values[1, 1] == 5  # untouched
    store.write_dataset(_ds() * 2, out, overwrite=True)
    assert store.open_store(out)["v"].values[1, 1] == 10


def test_float_volumes_stored_with_lz4_exactly(tmp_path):
    import zarr
    from zarr.codecs import BloscCodec, ZstdCodec

    rng = np.random.default_rng(0)
    vol = rng.normal(size=(4, 16, 16)).astype("f4")
    ds = xr.Dataset({"full": (("z", "y", "x"), vol), "n": (("z",), np.arange(4))}).chunk()
    store.write_dataset(ds, tmp_path / "r.zarr")
    (comp,) = zarr.open_array(str(tmp_path / "r.zarr" / "full")).compressors
    assert isinstance(comp, BloscCodec) and comp.cname.value == "lz4"
    assert comp.shuffle.value == "bitshuffle"
    # integers keep Zarr's default; an explicit compressor in the encoding is kept
    assert not isinstance(zarr.open_array(str(tmp_path / "r.zarr" / "n")).compressors[0],
                          BloscCodec)
    np.testing.assert_array_equal(store.open_store(tmp_path / "r.zarr")["full"].values, vol)
    ds["full"].encoding["compressors"] = (ZstdCodec(level=3),)
    assert "full" not in store.float_encoding(ds)


def test_failed_write_leaves_nothing(tmp_path):
    out = tmp_path / "b.zarr"

    def boom(x):
        raise RuntimeError("bad block")

    ds = _ds()
    ds["v"] = ds["v"].copy(data=ds["v"].data.map_blocks(boom, dtype="f4"))
    with pytest.raises(RuntimeError, match="bad block"):
        store.write_dataset(ds, out)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_incomplete_store_is_refused(tmp_path):
    out = tmp_path / "c.zarr"
    _ds().to_zarr(out, zarr_format=3, consolidated=False)
    with pytest.raises(tc.IncompleteStoreError, match="incomplete"):
        store.open_store(out)
