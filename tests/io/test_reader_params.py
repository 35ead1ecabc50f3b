"""Readers own their parameters: scans laid out other than the standard read through
``ingest: {READER: {...}}`` and ``--set ingest.READER.PARAM=...`` (issue 14)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from tomochunk import config as C
from tomochunk.cli import main
from tomochunk.errors import InputError
from tomochunk.io import store
from tomochunk.io.ingest import ingest
from tomochunk.io.readers import READERS, ArraySpec, ScanLayout, ScanReader
from tomochunk.registry import ParamRangeError

RNG = np.random.default_rng(1)


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _dxchange_raw(path: Path, n=8, rows=4, cols=5):
    """A DXchange-like file whose datasets have other names than the standard's."""
    proj = RNG.integers(100, 1000, (n, rows, cols), dtype=np.uint16)
    flat = RNG.integers(1100, 1200, (2, rows, cols), dtype=np.uint16)
    dark = RNG.integers(10, 20, (2, rows, cols), dtype=np.uint16)
    theta = np.linspace(0, 180, n, endpoint=False)
    with h5py.File(path, "w") as f:
        f["exchange/data_raw"] = proj
        f["exchange/white_raw"] = flat
        f["exchange/dark_raw"] = dark
        f["exchange/angles"] = theta
        f["exchange/angles"].attrs["units"] = "degrees"
    return proj, flat, dark, np.deg2rad(theta)


DX_SECTION = {"data": "/exchange/data_raw", "flat": "/exchange/white_raw",
              "dark": "/exchange/dark_raw", "theta": "/exchange/angles"}


def _check_scan(out: Path, proj, flat, dark, theta):
    ds = store.open_scan(out)
    np.testing.assert_array_equal(ds.projections.values, proj)
    np.testing.assert_array_equal(ds.flat.values, flat)
    np.testing.assert_array_equal(ds.dark.values, dark)
    np.testing.assert_allclose(ds.theta.values, theta, rtol=0, atol=1e-12)


def test_dxchange_dataset_names_from_a_config_file_and_set(tmp_path):
    src = tmp_path / "raw.h5"
    arrays = _dxchange_raw(src)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("ingest:\n  format: dxchange\n  dxchange:\n" + "".join(
        f"    {k}: {v}\n" for k, v in DX_SECTION.items()))
    res = _cli("ingest", src, tmp_path / "a.zarr", "--config", cfg, "-q")
    assert res.exit_code == 0, res.output
    _check_scan(tmp_path / "a.zarr", *arrays)
    sets = [a for k, v in DX_SECTION.items() for a in ("--set", f"ingest.dxchange.{k}={v}")]
    res = _cli("ingest", src, tmp_path / "b.zarr", "--format", "dxchange", *sets, "-q")
    assert res.exit_code == 0, res.output
    _check_scan(tmp_path / "b.zarr", *arrays)


def test_a_wrong_dataset_path_is_one_line_naming_the_key_before_any_read(tmp_path):
    src = tmp_path / "raw.h5"
    _dxchange_raw(src)
    res = _cli("ingest", src, tmp_path / "s.zarr", "--format", "dxchange", "-q")
    assert res.exit_code == 2
    line = res.output.strip()
    assert "\n" not in line and "the DXchange dataset /exchange/data (projections) is " \
        "missing" in line
    assert "/exchange/data_raw (8, 4, 5)" in line  # what the file holds
    assert "--set ingest.dxchange.data=PATH" in line
    # a flat path given explicitly must exist (the default one may be absent)
    res = _cli("ingest", src, tmp_path / "s.zarr", "--format", "dxchange",
               "--set", "ingest.dxchange.data=/exchange/data_raw",
               "--set", "ingest.dxchange.flat=/exchange/flat_raw", "-q")
    assert res.exit_code == 2
    assert "/exchange/flat_raw (flat fields) is missing" in res.output
    assert "--set ingest.dxchange.flat=PATH" in res.output
    # run checks the reader's layout before it claims the run folder or starts a cluster
    res = _cli("run", src, "--out", tmp_path / "run", "--set", "ingest.format=dxchange", "-q")
    assert res.exit_code == 2 and "--set ingest.dxchange.data=PATH" in res.output
    assert [p.name for p in tmp_path.iterdir()] == ["raw.h5"]  # nothing partial


def _nexus_elsewhere(path: Path, n=6, rows=3, cols=4):
    """An NXtomo-like entry at /scans/tomo_2 without NX_class attributes, frames at
    ``camera/frames``, kinds at ``camera/kinds``, angles at ``stage/omega``."""
    keys = np.array([2, 1] + [0] * n + [1], dtype=np.int8)
    frames = RNG.integers(0, 5000, (keys.size, rows, cols), dtype=np.uint16)
    angles = np.r_[0.0, 0.0, np.linspace(0, 180, n, endpoint=False), 0.0]
    with h5py.File(path, "w") as f:
        g = f.create_group("scans/tomo_2")
        g["camera/frames"] = frames
        g["camera/kinds"] = keys
        g["stage/omega"] = angles
        g["stage/omega"].attrs["units"] = "degree"
    return (frames[keys == 0], frames[keys == 1], frames[keys == 2],
            np.deg2rad(angles[keys == 0]))


def test_nexus_entry_and_datasets_at_other_paths(tmp_path):
    src = tmp_path / "scan.nxs"
    arrays = _nexus_elsewhere(src)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("ingest:\n  format: nexus\n  nexus: {entry: /scans/tomo_2, data: "
                   "camera/frames, image_key: camera/kinds, rotation_angle: stage/omega}\n")
    res = _cli("ingest", src, tmp_path / "a.zarr", "--config", cfg, "-q")
    assert res.exit_code == 0, res.output
    _check_scan(tmp_path / "a.zarr", *arrays)
    assert store.open_scan(tmp_path / "a.zarr").attrs["nexus_entry"] == "/scans/tomo_2"
    # without the entry: not found by its attributes, and the message says what to set
    res = _cli("ingest", src, tmp_path / "b.zarr", "--format", "nexus", "-q")
    assert res.exit_code == 2 and "set ingest.nexus.entry to the entry's path" in res.output
    res = _cli("ingest", src, tmp_path / "b.zarr", "--format", "nexus",
               "--set", "ingest.nexus.entry=/scans/tomo_2", "-q")
    assert res.exit_code == 2
    assert ("looked for instrument/detector/data and data/data); the file holds: "
            "/scans/tomo_2/camera/frames (9, 3, 4)") in res.output
    assert "--set ingest.nexus.data=PATH" in res.output
    res = _cli("ingest", src, tmp_path / "b.zarr", "--format", "nexus",
               "--set", "ingest.nexus.entry=/scans/tomo_2",
               "--set", "ingest.nexus.data=camera/frames",
               "--set", "ingest.nexus.image_key=camera/kinds",
               "--set", "ingest.nexus.rotation_angle=stage/omega", "-q")
    assert res.exit_code == 0, res.output
    _check_scan(tmp_path / "b.zarr", *arrays)


def test_tiff_flats_found_by_their_name_pattern(tmp_path):
    folder = tmp_path / "tiffs"
    folder.mkdir()
    proj = RNG.integers(0, 60000, (5, 3, 4), dtype=np.uint16)
    for i in range(5):
        tifffile.imwrite(folder / f"img_{i}.tif", proj[i])
    flats = RNG.integers(60000, 65000, (2, 3, 4), dtype=np.uint16)
    for i in range(2):
        tifffile.imwrite(folder / f"ff_{i}.tif", flats[i])
    dark = np.full((3, 4), 100, np.uint16)
    tifffile.imwrite(folder / "dark_0.tif", dark)
    (folder / "angles.txt").write_text("\n".join(map(str, np.linspace(0, 180, 5))) + "\n")
    # the default patterns take ff_*.tif for projections: 7 images for 5 angles
    with pytest.raises(InputError, match="7"):
        ingest(folder, tmp_path / "x.zarr")
    out = ingest(folder, tmp_path / "s.zarr",
                 config=C.IngestConfig(tiff={"flat_pattern": "^ff_"}))
    np.testing.assert_array_equal(out.projections.values, proj)
    np.testing.assert_array_equal(out.flat.values, flats)
    np.testing.assert_array_equal(out.dark.values, dark[None])
    with pytest.raises(ParamRangeError, match=r"ingest.tiff.flat_pattern: '\^ff_\[' is not a "
                       "valid regular expression"):
        C.IngestConfig(tiff={"flat_pattern": "^ff_["})


# ---------------------------------------------------------------------------------------
# a third-party reader with parameters, registered through the registry API


@dataclass(frozen=True)
class GainParams:
    """Parameters of the toy reader.

    Attributes
    ----------
    gain : float
        Factor applied to every pixel read.
    """

    gain: float = 1.0

    def __post_init__(self) -> None:
        if not self.gain > 0:
            raise ParamRangeError(f"ingest.toy.gain must be > 0 (got {self.gain})",
                                  param="gain", rule="must be > 0", value=self.gain)


class ToyReader(ScanReader):
    """``.toy`` files: a .npy array of transmission projections, angles over 180 degrees."""

    format = "toy"
    description = "toy .npy transmission scans"
    Params = GainParams

    @classmethod
    def sniff(cls, path: Path) -> bool:
        return path.suffix == ".toy"

    def _open(self) -> ScanLayout:
        self._arr = np.load(self.source)
        n = self._arr.shape[0]
        return ScanLayout(ArraySpec(self._arr.shape, np.dtype(np.float32)),
                          np.linspace(0, np.pi, n, endpoint=False), source=str(self.source))

    def read_rows(self, start: int, stop: int) -> dict[str, np.ndarray]:
        return {"projections": (self._arr[:, start:stop] * self.options.gain).astype(
            np.float32)}


@pytest.fixture
def toy_reader():
    READERS.register(ToyReader)
    try:
        yield ToyReader
    finally:
        READERS.unregister("toy")


def test_third_party_reader_gets_its_section_and_set(toy_reader, tmp_path):
    src = tmp_path / "scan.toy"
    data = RNG.uniform(0.2, 0.9, (6, 3, 4)).astype(np.float32)
    with open(src, "wb") as f:
        np.save(f, data)
    assert C.to_dict(C.RunConfig())["ingest"]["toy"] == {"gain": 1.0}
    assert "  toy:  # toy .npy transmission scans." in C.example_yaml()
    res = _cli("ingest", src, tmp_path / "a.zarr", "--set", "ingest.toy.gain=2", "-q")
    assert res.exit_code == 0, res.output
    np.testing.assert_allclose(store.open_scan(tmp_path / "a.zarr").projections.values,
                               2 * data, rtol=1e-6)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("ingest:\n  toy: {gain: 0.5}\n")
    res = _cli("ingest", src, tmp_path / "b.zarr", "--config", cfg, "-q")
    assert res.exit_code == 0, res.output
    np.testing.assert_allclose(store.open_scan(tmp_path / "b.zarr").projections.values,
                               0.5 * data, rtol=1e-6)
    res = _cli("ingest", src, tmp_path / "c.zarr", "--set", "ingest.toy.gain=-1", "-q")
    assert res.exit_code == 2 and "ingest.toy.gain must be > 0 (got -1" in res.output
    assert C.stage_hash("x", C.IngestConfig(toy={"gain": 2.0})) != C.stage_hash(
        "x", C.IngestConfig())
