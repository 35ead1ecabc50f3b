"""Config validation and the registry (tomochunk.config, tomochunk.registry)."""

from __future__ import annotations

import pytest

import tomochunk as tc
from tomochunk import config as cfgmod
from tomochunk.registry import Registry


def test_unknown_config_key_lists_valid_keys(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("train:\n  depht: 10\n")
    with pytest.raises(tc.ConfigError, match=r"train\.depht.*valid keys are: network, depth"):
        tc.load_config(p)


def test_wrong_type_is_rejected():
    with pytest.raises(tc.ConfigError, match=r"depth: expected an integer, got 'ten'"):
        cfgmod.from_dict(cfgmod.TrainConfig, {"depth": "ten"})
    with pytest.raises(tc.ConfigError, match="stripe"):
        cfgmod.from_dict(cfgmod.PreprocessConfig, {"stripe": "magic"})


def test_config_roundtrip_and_hash(tmp_path):
    cfg = cfgmod.RunConfig()
    cfg = cfgmod.replace(cfg, train=cfgmod.replace(cfg.train, depth=30),
                         preprocess=cfgmod.replace(cfg.preprocess, center=296.0))
    p = tmp_path / "c.yaml"
    cfgmod.save_config(cfg, p)
    back = tc.load_config(p)
    assert back == cfg
    assert cfgmod.config_hash(back.train) == cfgmod.config_hash(cfg.train)
    assert cfgmod.config_hash(cfgmod.TrainConfig()) != cfgmod.config_hash(cfg.train)


def test_registry_errors_list_names():
    reg: Registry[object] = Registry("widget")
    reg.register("a")(object())
    reg.register("b", is_available=lambda: False, requires="pkg-b")(object())
    with pytest.raises(tc.ConfigError, match="valid names are: a, b"):
        reg.get("c")
    with pytest.raises(tc.BackendUnavailableError, match="install pkg-b"):
        reg.get("b")
    assert reg.available() == {"a": True, "b": False}
