"""``--config FILE`` and ``--set KEY=VALUE`` on every command that takes configuration."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from tomochunk.cli import main

# (command and its arguments, a --set that is out of range, the one-line error it gives)
CASES = {
    "ingest": (["ingest", "{t}/raw.h5", "{t}/scan.zarr"], "ingest.rows_per_chunk=0",
               "--rows-per-chunk must be >= 1 (got 0; "),
    "recon": (["recon", "{t}/scan.zarr", "{t}/recon.zarr"], "recon.splits=1",
              "--splits must be >= 2 (got 1)"),
    "train": (["train", "{t}/recon.zarr", "{t}/model"], "train.depth=0",
              "--depth must be >= 1 (got 0)"),
    "denoise": (["denoise", "{t}/recon.zarr", "{t}/model", "{t}/d.zarr"], "denoise.chunk_z=0",
                "chunk_z must be >= 1 (got 0)"),
    "filter": (["filter", "{t}/recon.zarr", "{t}/m.zarr", "--method", "median"],
               "filters.radius=0", "--radius must be >= 1 (got 0)"),
    "report": (["report", "{t}/run"], "report.slice_z=middle",
               "report.slice_z: expected"),
    "export": (["export", "{t}/recon.zarr"], "export.format=png",
               "export.format: 'png' is not one of"),
    "run": (["run", "{t}/raw.h5", "--out", "{t}/run"], "train.context=4",
            "context must be an odd number >= 1 (got 4)"),
    "demo": (["demo", "--out", "{t}/demo"], "denoise.ensemble=3",
             "ensemble must be 1, 2, 4 or 8 (got 3)"),
}


def _args(args, tmp_path):
    return [a.format(t=tmp_path) for a in args]


@pytest.mark.parametrize("command", sorted(CASES))
def test_set_and_config_reach_every_command(command, tmp_path):
    args, setting, message = CASES[command]
    args = _args(args, tmp_path)
    res = CliRunner().invoke(main, [*args, "--set", setting])
    assert res.exit_code == 2, res.output
    assert message in res.output
    key, _, value = setting.partition("=")
    section, _, name = key.partition(".")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({section: {name: yaml.safe_load(value)}}))
    res = CliRunner().invoke(main, [*args, "--config", str(cfg)])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert not any(p.name.endswith((".zarr", "model", "run", "demo")) for p in tmp_path.iterdir())


def test_options_given_override_the_file_and_defaults_come_from_the_config(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"filters": {"radius": 0}}))
    base = ["filter", str(tmp_path / "nope.zarr"), str(tmp_path / "m.zarr"), "--method",
            "median", "--config", str(cfg)]
    res = CliRunner().invoke(main, base)
    assert res.exit_code == 2 and "--radius must be >= 1 (got 0)" in res.output
    res = CliRunner().invoke(main, [*base, "--radius", "2"])  # the option wins: checks pass
    assert res.exit_code == 2 and "nope.zarr does not exist" in res.output
    res = CliRunner().invoke(main, ["train", "--help"])
    assert "[default: (100)]" in res.output  # train.depth's default, from TrainConfig


def test_unknown_key_in_set_is_refused_with_the_valid_ones(tmp_path):
    res = CliRunner().invoke(main, ["recon", str(tmp_path / "s.zarr"), str(tmp_path / "r.zarr"),
                                    "--set", "recon.split=3"])
    assert res.exit_code == 2
    assert "unknown config key(s) recon.split" in res.output and "splits" in res.output
