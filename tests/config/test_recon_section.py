"""ReconConfig as a component section: recon: {native: {...}}, --set, hashes, plugins."""

from __future__ import annotations

import textwrap
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import tomochunk as tc
from tomochunk import config as cfgmod
from tomochunk.errors import ConfigError
from tomochunk.overrides import parse_settings, resolve_config
from tomochunk.pipeline.stages import build_stages, recon_stage_config
from tomochunk.recon import RECONSTRUCTORS, reconstruct_sinograms
from tomochunk.recon.gridrec import NativeParams
from tomochunk.recon.registry import Reconstructor
from tomochunk.registry import ParamRangeError
from tomochunk.safe_yaml import load_yaml

#: Stage hashes computed on main before the backends had parameters (commit 12cc1db):
#: run folders made then must stay complete.
DEFAULT_RECON_HASH = "f3e8d5541d2b143d"
ASTRA_SPLITS4_RECON_HASH = "6ce26dc49a692ce7"
DEFAULT_TRAIN_HASH = "5846d6c790b721d0"


def _hashes(recon: cfgmod.ReconConfig) -> dict[str, str]:
    src = xr.Dataset(attrs={"source": "hash-test"})  # in memory: no file identity
    stages = build_stages(src, Path("/nonexistent/run"), cfgmod.RunConfig(recon=recon))
    return {s.name: s.hash for s in stages}


def test_recon_stage_hash_rules() -> None:
    default = _hashes(cfgmod.ReconConfig())
    assert (default["recon"], default["train"]) == (DEFAULT_RECON_HASH, DEFAULT_TRAIN_HASH)
    assert _hashes(cfgmod.ReconConfig(splits=4, backend="astra"))["recon"] == (
        ASTRA_SPLITS4_RECON_HASH)
    # another backend's parameters change nothing
    assert _hashes(cfgmod.ReconConfig(cufinufft={"eps": 1e-5, "upsampfac": 1.25})) == default
    assert _hashes(cfgmod.ReconConfig(splits=4, backend="astra", native={"eps": 1e-5}))[
        "recon"] == ASTRA_SPLITS4_RECON_HASH
    # the selected backend's do, and so every stage after it
    native = _hashes(cfgmod.ReconConfig(native={"eps": 1e-5}))
    assert native["recon"] != DEFAULT_RECON_HASH and native["train"] != DEFAULT_TRAIN_HASH
    assert _hashes(cfgmod.ReconConfig(native={"upsampfac": 2.0}))["recon"] not in (
        DEFAULT_RECON_HASH, native["recon"])
    # auto uses cufinufft's on a GPU and native's elsewhere: both count
    auto = _hashes(cfgmod.ReconConfig(backend="auto"))["recon"]
    for section in ({"native": {"eps": 1e-5}}, {"cufinufft": {"eps": 1e-5}}):
        assert _hashes(cfgmod.ReconConfig(backend="auto", **section))["recon"] != auto
    # only the non-default values are added, by "backend.param"
    fields = recon_stage_config(cfgmod.ReconConfig(native={"eps": 1e-5, "upsampfac": 1.25}))
    assert fields == {**cfgmod.result_fields(cfgmod.ReconConfig()), "native.eps": 1e-5}
    assert "components" not in cfgmod.result_fields(cfgmod.ReconConfig())


def test_recon_sections_yaml_round_trip(tmp_path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(textwrap.dedent("""
        recon: {splits: 2, backend: native, native: {eps: 1e-5, upsampfac: 2.0},
                cufinufft: {upsampfac: 1.25}, astra: {}}
    """))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no deprecated flat keys for recon
        cfg = tc.load_config(p)
    assert cfg.recon.params_of("native") == NativeParams(eps=1e-5, upsampfac=2.0)
    assert cfg.recon.params_of("cufinufft").upsampfac == 1.25
    assert cfg.recon.params_of("cufinufft").eps == 2e-5  # default kept
    d = cfgmod.to_dict(cfg)["recon"]
    assert d["native"] == {"eps": 1e-5, "upsampfac": 2.0}
    assert not {"astra", "auto", "tomopy", "components"} & set(d)  # no parameters, no section
    out = tmp_path / "back.yaml"
    cfgmod.save_config(cfg, out)
    assert tc.load_config(out) == cfg
    assert cfgmod.replace(cfg.recon, splits=3).params_of("native").upsampfac == 2.0
    assert cfgmod.ReconConfig(components={"native": {"eps": 1e-5}}) == cfgmod.ReconConfig(
        native={"eps": 1e-5})
    assert cfgmod.ReconConfig(native={}) == cfgmod.ReconConfig()  # defaults are not kept
    ex = cfgmod.example_yaml()
    assert "  native:  # Fourier-gridding FBP" in ex and "    upsampfac: 1.25  # " in ex


def test_set_and_replace_reach_the_sections() -> None:
    cfg = resolve_config(None, parse_settings(
        ["recon.native.eps=1e-5", "recon.native.upsampfac=2.0", "recon.splits=3",
         "train.lr=2e-4"]))
    assert cfg.recon.params_of("native") == NativeParams(eps=1e-5, upsampfac=2.0)
    assert (cfg.recon.splits, cfg.train.lr) == (3, 2e-4)  # 1e-5: a float, as in YAML 1.2
    assert cfgmod.replace(cfg.recon, native={"eps": 3e-5}).params_of("native").eps == 3e-5
    with pytest.raises(ParamRangeError, match=r"^recon\.native\.eps must be >= 1e-6"):
        resolve_config(None, {"recon.native.eps": 1e-9})


def test_unknown_recon_params_are_one_line_errors() -> None:
    with pytest.raises(ConfigError) as err:
        cfgmod.from_dict(cfgmod.RunConfig, {"recon": {"native": {"epsilon": 1e-5}}})
    assert str(err.value) == ("unknown parameter(s) epsilon for reconstruction backend "
                              "'native'; valid parameters are: eps, upsampfac")
    with pytest.raises(ConfigError, match=r"for reconstruction backend 'astra'; valid "
                                          r"parameters are: \(none\)$"):
        resolve_config(None, {"recon.astra.gpu_index": 1})
    with pytest.raises(ConfigError, match=r"unknown config key\(s\) recon\.fbp in ReconConfig; "
                                          r"valid keys are: .*astra, auto, cufinufft, native"):
        cfgmod.from_dict(cfgmod.RunConfig, {"recon": {"fbp": {"eps": 1e-5}}})


@dataclass(frozen=True)
class ToyParams:
    """Parameters of the toy reconstructor.

    Attributes
    ----------
    gain : float
        The constant every slice is filled with.
    """

    gain: float = 1.0

    def __post_init__(self) -> None:
        if not self.gain > 0:
            raise ParamRangeError(f"recon.toyrecon.gain must be > 0 (got {self.gain})",
                                  param="gain", rule="must be > 0", value=self.gain)


def _toy_block(sino, theta, center, config, *, nthreads=None):
    n = sino.shape[-1]
    return np.full((sino.shape[1], n, n), config.params_of("toyrecon").gain, np.float32)


def test_third_party_reconstructor_gets_its_section_and_set() -> None:
    toy = Reconstructor("toyrecon", _toy_block, params=ToyParams,
                        description="fills the slices with a constant (registered in code)")
    RECONSTRUCTORS.register(toy)
    try:
        text = "recon: {backend: toyrecon, toyrecon: {gain: 2.5}}"
        cfg = resolve_config(load_yaml(text, "test"),
                             parse_settings(["recon.toyrecon.gain=3"]))
        assert cfg.recon.params_of("toyrecon") == ToyParams(gain=3.0)
        att = np.ones((8, 2, 5), np.float32)
        out = reconstruct_sinograms(att, np.linspace(0, np.pi, 8, endpoint=False), 2.0,
                                    cfg.recon)
        assert out.shape == (3, 2, 5, 5) and np.all(out == 3.0)
        assert cfgmod.to_dict(cfg)["recon"]["toyrecon"] == {"gain": 3.0}
        assert "  toyrecon:  # fills the slices" in cfgmod.example_yaml()
        assert _hashes(cfg.recon)["recon"] != _hashes(cfgmod.ReconConfig(backend="toyrecon"))[
            "recon"]
        with pytest.raises(ParamRangeError, match=r"recon\.toyrecon\.gain must be > 0"):
            resolve_config(None, {"recon.toyrecon.gain": 0})
    finally:
        RECONSTRUCTORS.unregister("toyrecon")
    assert "toyrecon" not in cfgmod.to_dict(cfgmod.ReconConfig())
