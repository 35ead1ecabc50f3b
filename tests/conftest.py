"""Shared test fixtures: the real data in ../shared/data, temporary run folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TOMOCHUNK_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_file(*parts: str) -> Path:
    """Path of a file in ../shared/data; skip the test cleanly when it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data {path} is absent (set TOMOCHUNK_SHARED_DATA)")
    return path


@pytest.fixture
def shared_data() -> Path:
    """The ../shared/data folder (skips when absent)."""
    if not SHARED_DATA.exists():
        pytest.skip(f"shared test data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def fast_run(tmp_path_factory):
    """One uninterrupted ``tomochunk run`` (CLI, one worker, ``--quiet``) of a small DXchange
    scan with ``test_pipeline.FAST`` and 4 epochs, shared by the tests that only read it or
    copy it (resume reference, changed configuration, napari/NGFF views).

    Returns a namespace: ``src`` (the input file), ``run`` (the run folder), ``config`` (the
    YAML config file), ``args`` (the CLI flags after ``--out``) and ``result`` (the
    :class:`subprocess.CompletedProcess` of the run).
    """
    from types import SimpleNamespace

    from .pipeline.test_pipeline import FAST, _cfg_file, _run_cli, _write_dxchange

    tmp = tmp_path_factory.mktemp("fast-run")
    src = _write_dxchange(tmp / "scan.h5")
    cfgp = _cfg_file(tmp, {**FAST, "train": {**FAST["train"], "epochs": 4}})
    args = ["--config", str(cfgp), "--workers", "1", "--quiet"]
    run = tmp / "ref"
    res = _run_cli(["run", str(src), "--out", str(run), *args], timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    return SimpleNamespace(src=src, run=run, config=cfgp, args=args, result=res)
