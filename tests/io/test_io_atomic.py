"""tomochunk.io.atomic and tomochunk.io.jsonsafe: the write-then-rename and JSON helpers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tomochunk.io.atomic import atomic_file, atomic_write_text, swap_into_place, temp_sibling
from tomochunk.io.jsonsafe import json_safe


def test_atomic_file_leaves_the_old_file_and_no_temporary_on_failure(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_file(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_swap_into_place_replaces_a_folder_and_removes_the_old_one(tmp_path):
    target = tmp_path / "out.zarr"
    (target / "x").mkdir(parents=True)
    tmp = temp_sibling(target)
    assert tmp.name.startswith(".out.zarr.partial-")
    (tmp / "y").mkdir(parents=True)
    swap_into_place(tmp, target)
    assert [p.name for p in target.iterdir()] == ["y"]
    assert [p.name for p in tmp_path.iterdir()] == ["out.zarr"]


def test_json_safe_makes_numpy_and_non_finite_values_plain_json():
    v = {1: np.float32(2.5), "a": np.arange(3), "t": (np.int64(4), float("nan")),
         "inf": -math.inf, "o": object}
    out = json_safe(v)
    assert out["1"] == 2.5 and out["a"] == [0, 1, 2] and out["t"] == [4, None]
    assert out["inf"] == "-inf" and out["o"] == str(object)
    json.dumps(out, allow_nan=False)  # strict JSON
    kept = json_safe({"x": np.float64("nan")}, finite=False)
    assert math.isnan(kept["x"])
