"""benchmarks/gpu_check.py: the CPU smoke run exercises every section and writes its JSON; without
a GPU the real run says so and measures nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


def _run(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.slow
def test_cpu_smoke_runs_every_section(tmp_path) -> None:
    out = tmp_path / "smoke.json"
    proc = _run("--cpu-smoke", "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["smoke"] is True
    s = data["sections"]
    assert list(s) == ["recon", "train_throughput", "time_to_min", "inference"]
    assert not [k for k, v in s.items() if "error" in v]
    recon = s["recon"]["rows"]
    assert recon[0]["max_rel_diff_gpu_cpu"] == 0.0  # smoke: native stands in for the GPU
    assert recon[0]["gpu_s_measured"] > 0 and recon[1]["gpu_extrapolated"] is True
    tp = {(r["network"], r["precision"]): r for r in s["train_throughput"]["rows"]}
    assert tp[("msd-4", "fp32")]["train_mvoxel_s"] > 0
    assert "not supported" in tp[("msd-4", "bf16")]["note"]  # MSDNet's backward is fp32 only
    assert tp[("unet-2", "bf16")]["train_mvoxel_s"] > 0
    ttm = s["time_to_min"]["rows"][0]
    assert 1 <= ttm["best_epoch"] <= ttm["epochs_run"]
    assert ttm["s_to_best_400_slices_extrapolated_linear"] > ttm["s_to_best_epoch"]
    inf = s["inference"]["rows"]
    assert inf[0]["denoised_mvoxel_s"] > 0
    assert inf[1]["max_rel_diff_gpu_cpu"] < 1e-5  # both on CPU here
    assert "== inference" in proc.stdout and "| network" in proc.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_gpu_it_says_so_and_measures_nothing(tmp_path) -> None:
    out = tmp_path / "gpu.json"
    proc = _run("--out", str(out), timeout=120)
    assert proc.returncode == 2
    assert "torch sees no CUDA GPU here" in proc.stderr and "--cpu-smoke" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()
