"""The README's Python example runs as written (in a temporary folder)."""

from __future__ import annotations

import re

import pytest

from ..conftest import REPO


def _python_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_readme_has_python_example():
    assert _python_blocks(), "README.md lost its Python example"


@pytest.mark.slow
def test_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for block in _python_blocks():
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "(12, 64, 64) (2, 12, 64, 64)" in out
    assert (tmp_path / "denoised.zarr").exists()


def test_readme_example_config_is_valid(tmp_path):
    import tomochunk as tc

    text = (REPO / "README.md").read_text()
    (yaml_block,) = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    p = tmp_path / "c.yaml"
    p.write_text(yaml_block)
    cfg = tc.load_config(p)
    assert cfg.train.context == 5 and cfg.filters.methods == ["median", "nlm", "iternlm"]
