"""Learning-rate schedules, the still-improving test and the under-trained warning, and
training for a budget (throughput probe, fixed step count, plan kept on resume, run default).
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
import xarray as xr
from click.testing import CliRunner

import tomochunk.training as T
from tomochunk.config import TrainConfig
from tomochunk.errors import ConfigError
from tomochunk.io.store import write_dataset
from tomochunk.training.budget import (
    default_budget_minutes,
    plan_budget,
    round_steps,
    with_default_budget,
)
from tomochunk.training.schedule import lr_at, still_improving

TINY = dict(network="msd", depth=4, width=1, patch_size=24, batch_size=4, patches_per_epoch=8,
            epochs=2, device="cpu", threads=1, seed=0)


@pytest.fixture(scope="module")
def recon(tmp_path_factory):
    rng = np.random.default_rng(0)
    truth = np.zeros((12, 40, 40), np.float32)
    truth[:, 10:30, 8:25] = 1.0
    truth[4:9, 15:20, 12:33] = 0.5
    splits = np.stack([truth + rng.normal(0, 0.3, truth.shape) for _ in range(2)])
    ds = xr.Dataset({"split": (("split", "z", "y", "x"), splits.astype(np.float32))},
                    attrs={"n_splits": 2, "angles_per_split": 90, "filter": "shepp"})
    path = tmp_path_factory.mktemp("budget") / "recon.zarr"
    write_dataset(ds.chunk({"z": 6}), path)
    return path


# ----------------------------------------------------------------------------- schedules


def test_cosine_schedule_warms_up_then_decays_to_one_percent():
    lrs = [lr_at(s, 100, 1e-3, "cosine", warmup=0.1) for s in range(100)]
    np.testing.assert_allclose(lrs[:10], 1e-3 * np.arange(1, 11) / 10)
    assert lrs[9] == pytest.approx(1e-3)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:], strict=False))
    assert lrs[-1] == pytest.approx(1e-5)
    assert lr_at(500, 100, 1e-3, "cosine") == pytest.approx(1e-5)  # past the plan: the last
    # halfway through the decay: the mean of peak and end
    assert lr_at(55, 101, 1e-3, "cosine", warmup=0.1) == pytest.approx((1e-3 + 1e-5) / 2)


def test_onecycle_and_constant_schedules():
    assert lr_at(0, 100, 1e-3, "onecycle", warmup=0.3) == pytest.approx(4e-5)
    assert lr_at(30, 100, 1e-3, "onecycle", warmup=0.3) == pytest.approx(1e-3)
    assert lr_at(99, 100, 1e-3, "onecycle", warmup=0.3) == pytest.approx(1e-7)
    assert lr_at(0, 100, 1e-3, "constant", warmup=0.0) == 1e-3
    assert lr_at(0, 100, 1e-3, "constant", warmup=0.05) == pytest.approx(2e-4)
    with pytest.raises(ConfigError, match="unknown lr_schedule"):
        lr_at(0, 10, 1e-3, "step")


def test_still_improving():
    assert still_improving([1.0, 0.9, 0.8])  # short and falling
    assert not still_improving([1.0, 0.8, 0.9])  # short, last is not the best
    assert still_improving([1.0, 0.9, 0.8, 0.7, 0.65, 0.6, 0.58, 0.55])
    # level for the last 5 epochs (noise only): not improving
    assert not still_improving([1.0, 0.8, 0.7, 0.7005, 0.7003, 0.7004, 0.7001, 0.7002])
    assert not still_improving([1.0, 0.8, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95])  # overfitting
    assert not still_improving([])


def test_fit_follows_the_cosine_schedule_and_records_lr(recon):
    m = T.train(recon, **{**TINY, "epochs": 4, "lr_schedule": "cosine", "warmup": 0.25})
    lrs = [e["lr"] for e in m.history["epochs"]]  # the rate of each epoch's last step
    np.testing.assert_allclose(lrs, [lr_at(2 * e - 1, 8, 1e-3, "cosine", 0.25)
                                     for e in range(1, 5)])
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(1e-5)  # warm-up ends
    assert all(e["cpu_seconds"] > 0 for e in m.history["epochs"])


def test_bad_schedule_settings_are_config_errors(recon):
    with pytest.raises(ConfigError, match="lr_schedule"):
        T.train(recon, **{**TINY, "lr_schedule": "step"})
    with pytest.raises(ConfigError, match=r"warmup must be in \[0, 1\)"):
        T.train(recon, **{**TINY, "warmup": 1.0})
    with pytest.raises(ConfigError, match="budget_minutes must be > 0"):
        T.train(recon, **{**TINY, "budget_minutes": 0})


def test_under_trained_run_warns_once_and_says_so_in_the_metadata(recon, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="tomochunk"):
        m = T.train(recon, tmp_path / "m", **{**TINY, "epochs": 3, "lr": 3e-3})
    vals = [e["val_loss"] for e in m.history["epochs"]]
    assert vals[-1] == min(vals)  # still falling after 3 epochs of 2 steps
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING
                and "under-trained" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].getMessage().startswith("WARNING: training")
    loaded = T.load_model(tmp_path / "m")
    assert loaded.metadata["under_trained"] is True
    assert "under-trained" in loaded.metadata["warnings"][0]
    assert any("estimated training time" in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------------------- budget


def test_round_steps_is_a_coarse_grid():
    assert [round_steps(s) for s in (0.3, 7, 1000, 1150, 1199, 1200, 2600, 9999)] == [
        1, 6, 1000, 1000, 1000, 1200, 2500, 8000]


def test_budget_settings_per_device_and_slice_size():
    from tomochunk.training.budget import budget_settings

    cpu = budget_settings(10, 192, cuda=False)
    assert cpu == {"network": "unet", "unet_depth": 2, "unet_features": 32,
                   "unet_space_to_depth": 2, "patch_size": 96, "batch_size": 8}
    # fewer levels on small slices, so the alignment (2**levels x 2) stays inside the patch
    assert [budget_settings(10, s, cuda=False)["unet_depth"] for s in (32, 24, 16, 12)] == [
        2, 1, 1, 1]
    assert budget_settings(10, 12, cuda=False)["unet_space_to_depth"] == 1
    assert budget_settings(10, 6, cuda=False)["network"] == "msd"
    gpu = budget_settings(30, 512, cuda=True)
    assert (gpu["network"], gpu["depth"], gpu["patch_size"]) == ("msd", 100, 256)


def test_plan_fills_the_budget_with_a_whole_number_of_epochs():
    cfg = TrainConfig(context=3, threads=1)
    torch.set_num_threads(1)
    plan = plan_budget(cfg, 0.2, context=3, side=40, val_pixels=2 * 2 * 40 * 40,
                       device=torch.device("cpu"))
    c = plan.config
    assert (c.network, c.unet_depth, c.unet_features, c.unet_space_to_depth) == (
        "unet", 2, 32, 2)
    assert c.patch_size == 40 and c.batch_size == 8
    assert plan.steps == c.epochs * (c.patches_per_epoch // c.batch_size)
    assert c.patience is None and c.max_minutes == pytest.approx(0.6)
    # rounded down onto the grid: at most the budget, at least 0.4 of it
    assert 0.2 * 0.4 <= plan.estimated_minutes <= 0.2 * 1.05
    assert "estimated" in plan.describe() and f"{plan.steps} steps" in plan.describe()


def test_budgeted_training_runs_the_planned_steps_and_resumes_with_its_plan(
        recon, tmp_path, caplog):
    path = tmp_path / "m"
    with caplog.at_level(logging.INFO, logger="tomochunk"):
        # (max_minutes: the wall-clock safety stop, generous on a busy test machine)
        m = T.train(recon, path, context=3, device="cpu", threads=1, budget_minutes=0.05,
                    max_minutes=10)
    plan_lines = [r.getMessage() for r in caplog.records if "training plan" in r.getMessage()]
    assert len(plan_lines) == 1 and "estimated" in plan_lines[0]
    b = m.metadata["budget"]
    tc = m.metadata["train_config"]
    assert b["minutes"] == 0.05 and b["steps"] == tc["epochs"] * (
        tc["patches_per_epoch"] // tc["batch_size"])
    assert len(m.history["epochs"]) == tc["epochs"]  # patience is off: all planned epochs
    assert tc["patience"] is None and tc["max_minutes"] == 10
    # resuming keeps the stored plan (no new probe that could pick other settings)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tomochunk"):
        again = T.train(recon, path, context=3, device="cpu", threads=1, budget_minutes=0.05,
                        max_minutes=10, resume=True)
    assert any("with its plan" in r.getMessage() for r in caplog.records)
    assert again.metadata["train_config"]["epochs"] == tc["epochs"]


def test_default_budget_fits_data_and_cores(recon):
    assert default_budget_minutes(48 * 192 * 192, 2, False) == 9.0
    assert default_budget_minutes(int(2e6), 8, False) == 5.0
    assert default_budget_minutes(int(1e9), 2, False) == 60.0
    cfg = with_default_budget(TrainConfig(device="cpu"), recon, 2)
    assert cfg.budget_minutes == 5.0
    chosen = TrainConfig(device="cpu", depth=8)
    assert with_default_budget(chosen, recon, 2) is chosen  # a user-chosen size is kept
    given = TrainConfig(device="cpu", budget_minutes=3.0)
    assert with_default_budget(given, recon, 2).budget_minutes == 3.0


def test_cli_train_budget_and_schedule_flags(recon, tmp_path):
    from tomochunk.cli import main

    res = CliRunner().invoke(main, [
        "train", str(recon), str(tmp_path / "m"), "--budget", "0.03", "--context", "3",
        "--lr-schedule", "onecycle", "--warmup", "0.2", "--device", "cpu", "--quiet"])
    assert res.exit_code == 0, res.output
    meta = T.load_model(tmp_path / "m").metadata
    assert meta["train_config"]["lr_schedule"] == "onecycle"
    assert meta["train_config"]["warmup"] == 0.2 and meta["budget"]["minutes"] == 0.03
