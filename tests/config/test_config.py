"""Frozen configs checked in one place; field metadata drives the stage hashes (issue 14)."""

from __future__ import annotations

import dataclasses

import pytest

import tomochunk as tc
from tomochunk import config as C
from tomochunk.errors import ConfigError


def test_every_section_is_frozen():
    cfg = C.RunConfig()
    for f in dataclasses.fields(cfg):
        section = getattr(cfg, f.name)
        name = dataclasses.fields(section)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(section, name, getattr(section, name))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.cluster = C.ClusterConfig()  # type: ignore[misc]


@pytest.mark.parametrize("make, message", [
    (lambda: C.TrainConfig(depth=0), "invalid training configuration: --depth must be >= 1"),
    (lambda: C.TrainConfig(context=4), "context must be an odd number >= 1 (got 4)"),
    (lambda: C.DenoiseConfig(ensemble=3), "ensemble must be 1, 2, 4 or 8 (got 3)"),
    (lambda: C.ReconConfig(splits=1), "--splits must be >= 2 (got 1)"),
    (lambda: C.ReconConfig(rows_per_block=0), "rows_per_block=0 must be at least 1"),
    (lambda: C.FilterConfig(radius=0), "invalid filter configuration: --radius must be >= 1"),
    (lambda: C.IngestConfig(read_block_mb=0), "--read-block-mb must be > 0 (got 0; "),
    (lambda: C.ClusterConfig(scheduler="tcp://a:1", scheduler_file="f"), "not both"),
])
def test_values_are_checked_when_constructed(make, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()


def test_every_way_to_change_a_config_checks_it():
    cfg = C.TrainConfig()
    with pytest.raises(ConfigError, match="--depth must be >= 1"):
        C.replace(cfg, depth=0)
    with pytest.raises(ConfigError, match="--depth must be >= 1"):
        dataclasses.replace(cfg, depth=0)
    with pytest.raises(ConfigError, match="depth: expected an integer"):
        C.replace(cfg, depth="ten")
    with pytest.raises(ConfigError, match="--depth must be >= 1"):
        C.from_dict(C.RunConfig, {"train": {"depth": 0}})
    assert C.replace(cfg, patience=None).patience == 10  # None: not given
    assert C.replace(cfg, patience=C.NULL).patience is None
    assert cfg.patience == 10 and cfg.depth == 100  # the original is unchanged


def test_result_metadata_drives_the_stage_hashes():
    train = C.TrainConfig()
    assert {"threads", "resume", "device"} & set(C.result_fields(train)) == set()
    assert "epochs" in C.result_fields(train) and "epochs" not in C.checkpoint_fields(train)
    assert "lr" in C.checkpoint_fields(train)
    base = C.stage_hash("up", train)
    assert C.stage_hash("up", C.replace(train, threads=3, resume=True, device="cpu")) == base
    assert C.stage_hash("up", C.replace(train, epochs=3)) != base
    assert C.stage_hash("other", train) != base
    io = C.IOConfig(storage_options={"key": "secret"})
    assert C.result_fields(io) == {}


def test_run_leaves_the_callers_config_unchanged(tmp_path):
    cfg = C.from_dict(C.RunConfig, {"train": {"epochs": 3}})
    before = C.to_dict(cfg)
    with pytest.raises(tc.InputError, match="does not exist"):
        tc.run(tmp_path / "nope.h5", tmp_path / "run", config=cfg,
               cluster=C.ClusterConfig(n_workers=1), storage_options={"anon": True})
    assert C.to_dict(cfg) == before
    assert cfg.cluster == C.ClusterConfig() and cfg.io.storage_options == {}
