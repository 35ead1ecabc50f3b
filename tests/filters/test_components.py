"""Components that own their parameters: a filter from outside the package (an entry point of
a test distribution, and the registry API) runs through ``tomochunk filter``, the pipeline and
the accessor; nested config sections, deprecated flat keys and unknown-parameter errors."""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from scipy import ndimage as ndi

import tomochunk as tc
from tomochunk import config as cfgmod
from tomochunk.errors import ConfigError
from tomochunk.filters import FILTERS
from tomochunk.io.store import open_store, write_dataset

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

TOY = '''
"""A toy filter plugin: gain * (3-slice z mean) + offset, with a z-halo of 1 slice."""
from dataclasses import dataclass

from scipy import ndimage as ndi

from tomochunk.errors import ConfigError
from tomochunk.filters.component import Filter


@dataclass(frozen=True)
class ToyParams:
    """Parameters of the toy filter.

    Attributes
    ----------
    gain : float
        Factor applied to the z mean.
    offset : float
        Added at the end.
    """

    gain: float = 2.0
    offset: float = 0.0

    def __post_init__(self):
        if not self.gain > 0:
            raise ConfigError(f"gain must be > 0, got {self.gain!r}")


class Toy(Filter):
    name = "toygain"
    description = "gain times the 3-slice z mean (test plugin)"
    Params = ToyParams

    def halo(self, params):
        return 1

    def kernel(self, slab, info, *, gain, offset):
        return gain * ndi.uniform_filter1d(slab, 3, axis=0, mode="reflect")[info.core] + offset
'''


def _expected(vol: np.ndarray, gain: float = 2.0, offset: float = 0.0) -> np.ndarray:
    return gain * ndi.uniform_filter1d(vol, 3, axis=0, mode="reflect") + offset


@pytest.fixture
def toy_dist(tmp_path, monkeypatch):
    """A test distribution ``tomochunk-toy`` with a ``tomochunk.filters`` entry point,
    installed into a temp dir on sys.path (and PYTHONPATH, for subprocesses and workers)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "tomochunk_toy.py").write_text(TOY)
    info = site / "tomochunk_toy-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tomochunk-toy\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[tomochunk.filters]\ntoygain = tomochunk_toy:Toy\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(site), str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]))
    yield site
    FILTERS.unregister("toygain")
    sys.modules.pop("tomochunk_toy", None)


def _recon(path: Path, n_z: int = 11) -> np.ndarray:
    rng = np.random.default_rng(0)
    vol = rng.normal(size=(n_z, 16, 17)).astype(np.float32)
    ds = xr.Dataset({"full": (("z", "y", "x"), da.from_array(vol, chunks=(4, -1, -1))),
                     "split": (("split", "z", "y", "x"),
                               da.from_array(np.stack([vol, vol + 0.1]), chunks=(1, 4, -1, -1)))},
                    coords={"z": np.arange(n_z) * 0.5})
    write_dataset(ds, path)
    return vol


def test_entry_point_filter_in_registry_accessor_and_config(toy_dist):
    toy = FILTERS.get("toygain")  # a miss rescans the entry points
    assert FILTERS.names() == ["iternlm", "median", "nlm", "toygain"]
    assert toy.halo(toy.params()) == 1 and not toy.needs_sigma
    vol = np.random.default_rng(1).normal(size=(9, 8, 8)).astype(np.float32)
    da_ = xr.DataArray(da.from_array(vol, chunks=(3, -1, -1)), dims=("z", "y", "x"))
    out = da_.tomo.toygain(gain=3.0, offset=1.0, chunk_z=3)  # chunks of 3 + halo of 1
    np.testing.assert_allclose(out.values, _expected(vol, 3.0, 1.0), rtol=1e-6, atol=1e-6)
    assert out.attrs["gain"] == 3.0 and out.name == "toygain"
    sig = inspect.signature(da_.tomo.toygain)
    assert list(sig.parameters) == ["gain", "offset", "chunk_z"]
    assert sig.parameters["gain"].default == 2.0
    assert "Factor applied to the z mean." in da_.tomo.toygain.__doc__
    with pytest.raises(TypeError):
        da_.tomo.toygain(gian=3.0)
    with pytest.raises(ConfigError, match="gain must be > 0"):
        da_.tomo.toygain(gain=-1.0)
    # the config section is generated from the registry too
    cfg = cfgmod.from_dict(cfgmod.FilterConfig, {"methods": ["toygain"], "toygain": {"gain": 4}})
    assert cfg.params_of("toygain").gain == 4.0
    assert "  toygain:  # gain times the 3-slice z mean" in cfgmod.example_yaml()


def test_entry_point_filter_through_cli(toy_dist, tmp_path):
    vol = _recon(tmp_path / "recon.zarr")
    out = tmp_path / "toy.zarr"
    res = subprocess.run(
        [str(BIN / "tomochunk"), "filter", str(tmp_path / "recon.zarr"), str(out), "--method",
         "toygain", "--param", "gain=0.5", "--param", "offset=2", "--chunk-z", "4",
         "--workers", "1", "--quiet"],
        capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert res.returncode == 0, res.stderr[-2000:]
    ds = open_store(out, required=("toygain",))
    np.testing.assert_allclose(ds["toygain"].values, _expected(vol, 0.5, 2.0), rtol=1e-6,
                               atol=1e-6)
    assert ds.attrs["filter_params"] == {"gain": 0.5, "offset": 2, "chunk_z": 4}
    bad = subprocess.run(
        [str(BIN / "tomochunk"), "filter", str(tmp_path / "recon.zarr"), str(tmp_path / "b.zarr"),
         "--method", "toygain", "--param", "gian=1"],
        capture_output=True, text=True, timeout=300, env=dict(os.environ))
    assert bad.returncode == 2
    assert ("unknown parameter(s) gian for filter 'toygain'; valid parameters are: gain, offset"
            in bad.stderr)
    assert not (tmp_path / "b.zarr").exists()


def test_registry_api_filter_runs_through_apply_filter(tmp_path):
    class Negate(tc.filters.Filter):
        name, description = "negate", "minus the volume (registered in code)"

        def kernel(self, slab, info):
            return -slab[info.core]

    FILTERS.register(Negate())
    try:
        vol = _recon(tmp_path / "recon.zarr")
        ds = tc.filters.apply_filter(tmp_path / "recon.zarr", tmp_path / "neg.zarr",
                                     method="negate", config=cfgmod.FilterConfig(chunk_z=4))
        np.testing.assert_array_equal(ds["negate"].values, -vol)
        with pytest.raises(ConfigError, match="'negate' is registered twice"):
            FILTERS.register(Negate())
    finally:
        FILTERS.unregister("negate")
    assert "negate" not in FILTERS.names()


@pytest.mark.slow
def test_entry_point_filter_in_pipeline(toy_dist, fast_run, tmp_path):
    from ..pipeline.test_pipeline import FAST

    run = tmp_path / "run"
    shutil.copytree(fast_run.run, run)
    cfg = {**FAST, "train": {**FAST["train"], "epochs": 4},
           "filters": {"methods": ["median", "toygain"], "chunk_z": 4,
                       "toygain": {"gain": 1.5}}}
    tc.run(fast_run.src, run, config=cfg, cluster=tc.ClusterConfig(n_workers=1))
    stages = json.loads((run / "run.json").read_text())["stages"]
    assert "filter:toygain" in stages
    full = open_store(run / "recon.zarr")["full"].values
    toy = open_store(run / "toygain.zarr")["toygain"].values
    np.testing.assert_allclose(toy, _expected(full, 1.5), rtol=1e-5, atol=1e-6)


def test_flat_keys_are_deprecated_but_work():
    with pytest.warns(DeprecationWarning, match=r"filters\.radius is deprecated; use "
                                                r"filters\.median\.radius"):
        run = cfgmod.from_dict(cfgmod.RunConfig, {"filters": {"radius": 3, "nlm_h": 0.5},
                                                  "train": {"unet_depth": 2}})
    assert run.filters.params_of("median").radius == 3
    assert (run.filters.params_of("nlm").h, run.filters.params_of("iternlm").h) == (0.5, 0.5)
    assert run.train.params_of("unet").depth == 2
    with pytest.warns(DeprecationWarning, match="unet_depth is deprecated"):
        cfg = cfgmod.TrainConfig(unet_depth=4, depth=7)
    with pytest.warns(DeprecationWarning):
        assert (cfg.unet_depth, cfg.depth) == (4, 7)
    assert cfg == cfgmod.TrainConfig(unet={"depth": 4}, msd={"depth": 7})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cfg.value("unet_depth") == 4  # internal reads: no warning


def test_nested_yaml_round_trip(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(textwrap.dedent("""
        filters: {methods: [median, nlm], chunk_z: 16, sigma: auto-split,
                  median: {radius: 1}, nlm: {h: 0.6}}
        train: {network: unet, unet: {depth: 2, features: 32, space_to_depth: 2},
                msd: {depth: 10, width: 1}}
    """))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the nested form warns about nothing
        cfg = tc.load_config(p)
    assert cfg.filters.params_of("median").radius == 1
    assert cfg.filters.params_of("nlm").h == 0.6
    assert cfg.filters.params_of("nlm").patch_distance == 5  # default kept
    assert cfg.train.params_of("unet").space_to_depth == 2
    d = cfgmod.to_dict(cfg)
    assert d["filters"]["median"] == {"radius": 1, "footprint": "ball"}
    assert d["train"]["msd"] == {"depth": 10, "width": 1}
    assert "radius" not in d["filters"] and "unet_depth" not in d["train"]
    out = tmp_path / "back.yaml"
    cfgmod.save_config(cfg, out)
    assert tc.load_config(out) == cfg
    assert cfgmod.config_hash(tc.load_config(out)) == cfgmod.config_hash(cfg)
    ex = cfgmod.example_yaml()
    assert "  median:  # 3D median" in ex and "    radius: 2  # Footprint radius" in ex
    assert "  unet:  # U-Net" in ex and "    space_to_depth: 1" in ex


def test_unknown_params_are_one_line_errors():
    with pytest.raises(ConfigError) as err:
        cfgmod.from_dict(cfgmod.RunConfig, {"filters": {"median": {"radus": 2}}})
    msg = str(err.value)
    assert msg == ("unknown parameter(s) radus for filter 'median'; valid parameters are: "
                   "radius, footprint") and "\n" not in msg
    with pytest.raises(ConfigError, match="valid parameters are: depth, features, "
                                          "space_to_depth"):
        cfgmod.from_dict(cfgmod.TrainConfig, {"unet": {"levels": 2}})
    with pytest.raises(ConfigError, match=r"valid keys are: .*median, nlm"):
        cfgmod.from_dict(cfgmod.FilterConfig, {"gauss": {"sigma": 1}})
    with pytest.raises(ConfigError,
                       match=r"--radius must be >= 1 voxel \(filters\.median\.radius; got 0\)"):
        cfgmod.from_dict(cfgmod.FilterConfig, {"median": {"radius": 0}})
    with pytest.raises(ConfigError, match=r"h: expected a number, got 'strong'"):
        cfgmod.from_dict(cfgmod.FilterConfig, {"nlm": {"h": "strong"}})
