"""Shared test fixtures: the real data in ../shared/data, temporary run folders."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from tomochunk.runtime.openmp_env import passive_openmp

# As the CLI and LocalCluster do: torch's OpenMP threads sleep, not spin, while they wait.
# Set before any test imports torch. Under `pytest -n 2` two tests share the two cores, and
# in-process training with spinning threads burnt twice the CPU (the quality test: 65 CPU-s
# against 37 beside a 2-thread load). Subprocesses and cluster workers inherit it.
passive_openmp()

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


def _start_rank(item) -> float:
    """Sort key: slow tests first, the longest first (``slow(seconds=...)``, measured idle)."""
    mark = item.get_closest_marker("slow")
    return 0.0 if mark is None else -1.0 - float(mark.kwargs.get("seconds", 0))


def pytest_configure(config):
    """Under ``pytest -n N``, hand tests to the workers one at a time (``--maxschedchunk 1``,
    unless given): xdist's default sends each worker a quarter of its share up front in
    collection order, which put every slow test on the first worker."""
    if getattr(config.option, "maxschedchunk", 0) is None:
        config.option.maxschedchunk = 1


def pytest_collection_modifyitems(config, items):
    """Run the slow end-to-end tests first, the longest of them first (a stable sort: the
    order is otherwise kept).

    Under ``pytest -n 2`` (CI's command) xdist hands the tests out one at a time in this
    order (see :func:`pytest_configure`), so the minutes-long tests start at once, spread over
    both workers, instead of one of them ending the run alone on one core while the other
    idles.
    """
    items.sort(key=_start_rank)


@contextmanager
def _exclusive(path: Path):
    """An exclusive ``flock`` on ``path`` (created), held for the block."""
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def fast_run(tmp_path_factory):
    """One uninterrupted ``tomochunk run`` (CLI, one worker, ``--quiet``) of a small DXchange
    scan with ``test_pipeline.FAST`` and 4 epochs, shared by the tests that only read it or
    copy it (resume reference, changed configuration, napari/NGFF views).

    Made once per test session: under ``pytest -n 2`` the first xdist worker that needs it
    makes it under a file lock in the session's shared temporary folder, and the other
    worker waits for it and reads it. Its users copy it before changing anything.

    Returns a namespace: ``src`` (the input file), ``run`` (the run folder), ``config`` (the
    YAML config file), ``args`` (the CLI flags after ``--out``) and ``result`` (the
    :class:`subprocess.CompletedProcess` of the run).
    """
    from types import SimpleNamespace

    from .pipeline.test_pipeline import FAST, _cfg_file, _run_cli, _write_dxchange

    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the folder all workers of this session share
        base = base.parent
    tmp = base / "fast-run"
    src, run, done = tmp / "scan.h5", tmp / "ref", tmp / "result.json"
    with _exclusive(base / "fast-run.lock"):
        if not done.exists():
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
            _write_dxchange(src)
            cfgp = _cfg_file(tmp, {**FAST, "train": {**FAST["train"], "epochs": 4}})
            args = ["--config", str(cfgp), "--workers", "1", "--quiet"]
            res = _run_cli(["run", str(src), "--out", str(run), *args], timeout=600)
            assert res.returncode == 0, res.stderr[-3000:]
            done.write_text(json.dumps({"args": res.args, "stdout": res.stdout,
                                        "stderr": res.stderr, "cli": args,
                                        "config": str(cfgp)}))
    rec = json.loads(done.read_text())
    res = subprocess.CompletedProcess(rec["args"], 0, rec["stdout"], rec["stderr"])
    return SimpleNamespace(src=src, run=run, config=Path(rec["config"]), args=rec["cli"],
                           result=res)
