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
