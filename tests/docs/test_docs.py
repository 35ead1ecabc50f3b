"""The documentation's contracts with the code: cited pages exist, type information ships."""

from __future__ import annotations

import importlib.resources
import re
import tomllib
from pathlib import Path

import tomochunk

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(tomochunk.__file__).resolve().parent
# a docstring's reference to the architecture page, e.g. ``docs/architecture.md``
ARCH_REF = re.compile(r"[\w./-]*architecture\.(?:md|rst)", re.IGNORECASE)


def architecture_references() -> list[tuple[Path, str]]:
    """Every (module, cited path) pair in the package's sources."""
    refs = []
    for module in sorted(PACKAGE.rglob("*.py")):
        for ref in ARCH_REF.findall(module.read_text(encoding="utf-8")):
            refs.append((module, ref))
    return refs


def test_architecture_references_resolve() -> None:
    refs = architecture_references()
    # the store, run-folder and model-folder contracts cite it (io.store, report.collect,
    # training.modelfile, ...); modules may move, so only that some do is required here
    assert len({module for module, _ in refs}) >= 3, refs
    missing = [f"{module.relative_to(ROOT)} cites {ref}" for module, ref in refs
               if not (ROOT / ref).is_file()]
    assert not missing, "; ".join(missing)


def test_architecture_page_is_in_the_docs() -> None:
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
    assert re.search(r"^architecture$", index, re.MULTILINE)
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    # the contracts the modules cite it for
    for section in ("Store contracts", "Run folder", "Model folder", "Layout"):
        assert re.search(rf"^#+ {section}", page, re.MULTILINE), section


def test_py_typed_ships() -> None:
    marker = importlib.resources.files("tomochunk") / "py.typed"
    assert marker.is_file()
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "py.typed" in config["tool"]["setuptools"]["package-data"]["tomochunk"]


def test_guide_example_config_loads(tmp_path: Path) -> None:
    import tomochunk as tc

    text = (ROOT / "docs" / "guide" / "configuration.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```yaml\n(.*?)```", text, flags=re.S)
    path = tmp_path / "run.yaml"
    path.write_text(block, encoding="utf-8")
    cfg = tc.load_config(path)
    assert cfg.recon.splits == 2 and cfg.train.context == 5 and cfg.denoise.chunk_z == 16
    assert cfg.io.storage_options == {"endpoint_url": "https://s3.example.org"}
