"""Reader of TIFF stacks: a folder of projection TIFFs, flat/dark TIFFs and an angles file.

Layout found automatically (or given explicitly with ``config.flats``, ``config.darks`` and
``config.angles``):

- projections: the TIFFs of the folder whose names do not say flat/white/bright or dark,
  sorted naturally (``raw_2`` before ``raw_10``); when the folder itself holds only flats and
  darks, its single subfolder of TIFFs (e.g. ``tiffs/``). A file may hold one image or a
  multi-page stack. A single multi-page TIFF file may also be given as the input.
- flats / darks: TIFFs whose names match ``flat|white|bright`` and ``dark`` in the projection
  folder or its parent (the reader's parameters :class:`TiffParams`, e.g.
  ``ingest: {tiff: {flat_pattern: '^ff_'}}`` for flats named ``ff_0001.tif``).
- angles: ``angles.txt`` (or ``theta.txt``, ...) in the same places. An angle list that also
  holds the flat/dark frames (e.g. Diamond's 5 darks, 5 flats, projections, 5 flats, 5 darks)
  is resolved by :func:`tomochunk.io.readers.select_projection_angles`.

Rows are read from memory-mapped files when the TIFFs are uncompressed and contiguous (only
the rows of the block are touched); compressed files are decoded whole once per block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..registry import ParamRangeError
from ..runtime.logs import get_logger
from .readers import (
    READERS,
    ArraySpec,
    ScanLayout,
    ScanReader,
    angles_from_file,
    expand_paths,
    natural_key,
)

__all__ = ["TiffReader", "TiffParams", "TIFF_SUFFIXES", "find_tiff_scan", "TiffScanFiles"]

log = get_logger("io.tiff")

TIFF_SUFFIXES = (".tif", ".tiff")
ANGLE_FILES = ("angles.txt", "angles.csv", "angles.dat", "theta.txt", "rotation_angle.txt")


def _regex(key: str, pattern: Any) -> re.Pattern[str]:
    """``pattern`` compiled (case-insensitive), or a one-line error naming ``key``."""
    if not isinstance(pattern, str) or not pattern:
        raise ParamRangeError(f"{key} must be a non-empty regular expression (got {pattern!r})",
                              param=key.rpartition(".")[2], rule="must be a regex",
                              value=pattern)
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise ParamRangeError(
            f"{key}: {pattern!r} is not a valid regular expression ({exc}); give a Python "
            "regex matched against the file names without suffix, e.g. '^ff_'",
            param=key.rpartition(".")[2], rule="must be a regex", value=pattern) from None


@dataclass(frozen=True)
class TiffParams:
    """How flat and dark TIFFs are told from projections by their names.

    Attributes
    ----------
    flat_pattern : str
        Regular expression searched (case-insensitive) in each file name without suffix:
        the files it matches are flat fields.
    dark_pattern : str
        The same for dark fields (tried first: a name matching both is a dark).
    """

    flat_pattern: str = "flat|white|bright"
    dark_pattern: str = "dark"

    def __post_init__(self) -> None:
        _regex("ingest.tiff.flat_pattern", self.flat_pattern)
        _regex("ingest.tiff.dark_pattern", self.dark_pattern)

    def kind(self, path: Path) -> str:
        """``"dark"``, ``"flat"`` or ``"projections"`` from the name of ``path``."""
        if re.search(self.dark_pattern, path.stem, re.IGNORECASE):
            return "dark"
        if re.search(self.flat_pattern, path.stem, re.IGNORECASE):
            return "flat"
        return "projections"


def _tiffs(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in TIFF_SUFFIXES),
        key=natural_key,
    )


@dataclass
class TiffScanFiles:
    """The files of a TIFF scan: projections, flats, darks and the angles file."""

    projections: list[Path]
    flat: list[Path]
    dark: list[Path]
    angles: Path | None
    folder: Path


def find_tiff_scan(
    source: str | Path,
    *,
    flats: str | None = None,
    darks: str | None = None,
    angles: str | None = None,
    params: TiffParams | None = None,
) -> TiffScanFiles:
    """Find the projection, flat, dark and angles files of a TIFF scan (see module doc).

    ``params`` holds the name patterns of flats and darks (default :class:`TiffParams`).

    Raises
    ------
    InputError
        When the folder holds no projection TIFFs, or several subfolders could hold them.
    """
    path = Path(source)
    _kind = (params or TiffParams()).kind
    if path.is_file():
        folder = path.parent
        proj = [path]
        search = [folder, folder.parent]
    else:
        folder = path
        proj = [p for p in _tiffs(folder) if _kind(p) == "projections"]
        search = [folder, folder.parent]
        if not proj:
            subs = [d for d in sorted(folder.iterdir(), key=natural_key)
                    if d.is_dir() and any(_kind(p) == "projections" for p in _tiffs(d))]
            if not subs:
                raise InputError(
                    f"{folder} holds no projection TIFFs (*.tif, *.tiff not named flat/dark), "
                    "nor a subfolder of them; give the folder of projections"
                )
            if len(subs) > 1:
                raise InputError(
                    f"{folder} has several subfolders of TIFFs ({', '.join(d.name for d in subs)});"
                    " give the folder of projections as INPUT"
                )
            proj = [p for p in _tiffs(subs[0]) if _kind(p) == "projections"]
            search = [subs[0], folder]

    def found(kind: str, explicit: str | None) -> list[Path]:
        if explicit is not None:
            return expand_paths(explicit, TIFF_SUFFIXES)
        for d in search:
            files = [p for p in _tiffs(d) if _kind(p) == kind and p not in proj]
            if files:
                return files
        return []

    angle_file = Path(angles) if angles is not None else None
    if angle_file is None:
        for d in search:
            hits = [d / name for name in ANGLE_FILES if (d / name).is_file()]
            if hits:
                angle_file = hits[0]
                break
    return TiffScanFiles(proj, found("flat", flats), found("dark", darks), angle_file, folder)


@dataclass
class _Tiff:
    """One TIFF file: its frames and the shape and dtype of each."""

    path: Path
    frames: int
    shape: tuple[int, int]
    dtype: np.dtype
    memmappable: bool | None = None


def _inspect(path: Path) -> _Tiff:
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            if not tf.series:
                raise ValueError("no image series")
            series = tf.series[0]
            shape, dtype = tuple(int(s) for s in series.shape), np.dtype(series.dtype)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001 - tifffile raises many kinds for bad files
        raise InputError(
            f"{path} is not a readable TIFF ({type(exc).__name__}: {exc}); replace the file or "
            "remove it from the folder"
        ) from exc
    if len(shape) == 2:
        return _Tiff(path, 1, shape, dtype)  # type: ignore[arg-type]
    if len(shape) == 3:
        return _Tiff(path, shape[0], shape[1:], dtype)  # type: ignore[arg-type]
    raise InputError(f"{path}: image shape {shape} is not a grey-level image or stack of them "
                     "(expected (rows, cols) or (frames, rows, cols))")


def _stack(files: list[Path], name: str) -> tuple[list[_Tiff], ArraySpec]:
    items = [_inspect(p) for p in files]
    first = items[0]
    for item in items[1:]:
        if item.shape != first.shape or item.dtype != first.dtype:
            raise InputError(
                f"{item.path}: image {item.shape} {item.dtype} differs from {first.path.name} "
                f"{first.shape} {first.dtype}; all {name} TIFFs must have one shape and dtype "
                "(remove stray files from the folder)"
            )
    frames = sum(i.frames for i in items)
    return items, ArraySpec((frames, *first.shape), first.dtype)  # type: ignore[arg-type]


def _read_rows(item: _Tiff, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of every frame of one file, shape ``(frames, rows, cols)``."""
    import tifffile

    block = None
    if item.memmappable is not False:
        try:
            mm = tifffile.memmap(item.path, mode="r")
            block = np.array(mm[..., start:stop, :])
            del mm
            item.memmappable = True
        except (ValueError, OSError):
            item.memmappable = False
    if block is None:
        try:
            img = tifffile.imread(item.path)
        except Exception as exc:  # noqa: BLE001 - tifffile raises many kinds for bad files
            raise InputError(
                f"{item.path} cannot be read ({type(exc).__name__}: {exc}); the TIFF is "
                "damaged: replace the file or remove it from the folder"
            ) from exc
        expected = item.shape if item.frames == 1 else (item.frames, *item.shape)
        if img.shape != expected:
            raise InputError(f"{item.path}: read shape {img.shape}, header said {expected}; "
                             "the TIFF is damaged: replace the file")
        block = img[..., start:stop, :]
    return block.reshape(item.frames, stop - start, item.shape[1])


@READERS.register
class TiffReader(ScanReader):
    """A TIFF stack (see the module docstring for how the files are found)."""

    format = "tiff"
    description = "a folder of projection TIFFs + flat/dark TIFFs + angles file"
    requires = "tifffile"
    Params = TiffParams
    priority = 30

    @classmethod
    def sniff(cls, path: Path) -> bool:
        if path.is_dir():
            return True
        return path.is_file() and path.suffix.lower() in TIFF_SUFFIXES

    def _open(self) -> ScanLayout:
        path = Path(self.source)
        cfg = self.config
        files = find_tiff_scan(path, flats=cfg.flats, darks=cfg.darks, angles=cfg.angles,
                               params=self.options)
        self._items: dict[str, list[_Tiff]] = {}
        specs: dict[str, ArraySpec] = {}
        for name in ("projections", "flat", "dark"):
            paths = getattr(files, name)
            if paths:
                self._items[name], specs[name] = _stack(paths, name)
            elif name != "projections":
                log.warning("%s: no %s TIFFs found (none named to match %r: name them %s_*.tif, "
                            "set ingest.tiff.%s_pattern or give them explicitly)", files.folder,
                            name, getattr(self.options, f"{name}_pattern"), name, name)
        n = specs["projections"].shape[0]
        if files.angles is None:
            raise InputError(
                f"{files.folder}: no angles file ({', '.join(ANGLE_FILES)}) beside the TIFFs "
                "or in their parent folder; give the angles with --angles FILE"
            )
        context = (f" (and {specs['flat'].shape[0] if 'flat' in specs else 0} flat, "
                   f"{specs['dark'].shape[0] if 'dark' in specs else 0} dark images)")
        theta, note = angles_from_file(files.angles, n, unit=cfg.angles_unit, context=context)
        attrs: dict[str, object] = {
            "n_projection_files": len(files.projections),
            "flat_files": [str(p) for p in files.flat],
            "dark_files": [str(p) for p in files.dark],
            "angles_file": str(files.angles),
        }
        if note:
            attrs["angle_layout"] = note
        log.info("%s: %d projections in %d files, %d flat and %d dark frames, angles from %s",
                 files.folder, n, len(files.projections),
                 specs["flat"].shape[0] if "flat" in specs else 0,
                 specs["dark"].shape[0] if "dark" in specs else 0, files.angles)
        return ScanLayout(
            projections=specs["projections"],
            theta=theta,
            flat=specs.get("flat"),
            dark=specs.get("dark"),
            source=str(path.resolve()),
            attrs=attrs,
        )

    def read_rows(self, start: int, stop: int) -> dict[str, np.ndarray]:
        out = {}
        for name, items in self._items.items():
            spec = self.layout.variables()[name]
            block = np.empty((spec.shape[0], stop - start, spec.shape[2]), dtype=spec.dtype)
            i = 0
            for item in items:
                block[i:i + item.frames] = _read_rows(item, start, stop)
                i += item.frames
            out[name] = block
        return out
