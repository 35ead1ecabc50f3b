"""Reader of NeXus NXtomo HDF5 scans.

The NXtomo application definition (NeXus International Advisory Committee,
https://manual.nexusformat.org/classes/applications/NXtomo.html) stores every frame of a scan
in one detector dataset ``entry/instrument/detector/data`` (also linked as
``entry/data/data``), with ``image_key`` telling each frame's kind (0 projection, 1 flat,
2 dark, 3 invalid) and ``entry/sample/rotation_angle`` its angle (degrees unless the
``units`` attribute says otherwise). This reader finds the NXtomo entry through the
``NX_class``/``definition`` attributes and splits each block of rows into projections, flats
and darks. A file laid out otherwise is read by setting the reader's parameters
(:class:`NexusParams`): ``ingest: {nexus: {entry: /scan_2, data: detector/frames}}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..runtime.logs import get_logger
from .dxchange import sniff_hdf5
from .readers import (
    READERS,
    ArraySpec,
    ScanLayout,
    ScanReader,
    angles_to_radians,
    check_hdf5_path,
    hdf5_listing,
    length_to_um,
    open_hdf5,
    select_projection_angles,
)

__all__ = ["NexusReader", "NexusParams", "find_nxtomo_entry"]

log = get_logger("io.nexus")

DATA = ("instrument/detector/data", "data/data")
IMAGE_KEY = ("instrument/detector/image_key", "data/image_key")
ROTATION = ("sample/rotation_angle", "data/rotation_angle")
PIXEL_SIZE = ("instrument/detector/x_pixel_size", "instrument/detector/pixel_size")


@dataclass(frozen=True)
class NexusParams:
    """Where a NeXus file keeps its NXtomo entry and datasets (None: found as the standard
    says).

    Attributes
    ----------
    entry : str or None
        HDF5 path of the NXtomo entry (``/entry1``); None: the NXentry whose ``definition``
        is NXtomo, else the first one holding the datasets.
    data : str or None
        The detector frames, relative to the entry; None: ``instrument/detector/data``, else
        ``data/data``.
    image_key : str or None
        The frame kinds (0 projection, 1 flat, 2 dark, 3 invalid), relative to the entry;
        None: ``instrument/detector/image_key``, else ``data/image_key`` (every frame a
        projection when there is neither).
    rotation_angle : str or None
        The rotation angles, relative to the entry; None: ``sample/rotation_angle``, else
        ``data/rotation_angle``.
    """

    entry: str | None = None
    data: str | None = None
    image_key: str | None = None
    rotation_angle: str | None = None

    def __post_init__(self) -> None:
        if self.entry is not None:
            check_hdf5_path("ingest.nexus.entry", self.entry, absolute=True, example="/entry1")
        for name, default in (("data", DATA), ("image_key", IMAGE_KEY),
                              ("rotation_angle", ROTATION)):
            if getattr(self, name) is not None:
                check_hdf5_path(f"ingest.nexus.{name}", getattr(self, name), absolute=False,
                                example=default[0])

    def paths(self, name: str) -> tuple[str, ...]:
        """The paths tried for ``name`` (data, image_key, rotation_angle), in order."""
        given = getattr(self, name)
        return (given,) if given is not None else {
            "data": DATA, "image_key": IMAGE_KEY, "rotation_angle": ROTATION}[name]


def _attr_text(obj: Any, name: str) -> str:
    value = obj.attrs.get(name)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        value = value.ravel()[0] if value.size else ""
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
    return str(value) if value is not None else ""


def _definition(group: Any) -> str:
    import h5py

    d = group.get("definition")
    if isinstance(d, h5py.Dataset):
        value = d[()]
        if isinstance(value, np.ndarray):
            value = value.ravel()[0] if value.size else b""
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return str(value).strip()
    return ""


def _first(group: Any, paths: tuple[str, ...]) -> Any:
    import h5py

    for p in paths:
        obj = group.get(p)
        if isinstance(obj, h5py.Dataset):
            return obj
    return None


def find_nxtomo_entry(h5: Any, params: NexusParams | None = None) -> Any:
    """The NXtomo entry of an open HDF5 file, or None.

    An ``NXentry`` (or ``NXsubentry`` inside one) whose ``definition`` reads ``NXtomo`` wins;
    otherwise the first NXentry holding a detector dataset and a rotation angle or
    image_key (at the paths of ``params``, default the standard ones).
    """
    p = params or NexusParams()
    import h5py

    entries = []
    for obj in h5.values():
        if isinstance(obj, h5py.Group) and _attr_text(obj, "NX_class") == "NXentry":
            entries.append(obj)
            entries.extend(
                sub for sub in obj.values()
                if isinstance(sub, h5py.Group) and _attr_text(sub, "NX_class") == "NXsubentry"
            )
    for g in entries:
        if _definition(g) == "NXtomo":
            return g
    for g in entries:
        if _first(g, p.paths("data")) is not None and (
            _first(g, p.paths("rotation_angle")) is not None
            or _first(g, p.paths("image_key")) is not None
        ):
            return g
    return None


def _image_keys(entry: Any, where: str, n_frames: int, p: NexusParams) -> np.ndarray:
    """The NXtomo ``image_key`` of every frame (0 projection, 1 flat, 2 dark, 3 invalid).

    Without an ``image_key`` every frame is a projection (unless ``p.image_key`` names one).
    """
    key_ds = _first(entry, p.paths("image_key"))
    if key_ds is None and p.image_key is not None:
        raise InputError(f"{where}: the image_key dataset {p.image_key} is missing; the file "
                         f"holds: {hdf5_listing(entry.file)}. Set ingest.nexus.image_key to "
                         "its path relative to the entry, or null if the file has none")
    if key_ds is not None:
        keys = np.asarray(key_ds[()]).ravel().astype(np.int64)
        if keys.size != n_frames:
            raise InputError(
                f"{where}: image_key has {keys.size} entries but the detector data has "
                f"{n_frames} frames; they must match"
            )
        unknown = sorted(set(np.unique(keys).tolist()) - {0, 1, 2, 3})
        if unknown:
            raise InputError(f"{where}: image_key values {unknown} are not 0 (projection), "
                             "1 (flat), 2 (dark) or 3 (invalid)")
    else:
        log.info("%s: no image_key; every frame is taken as a projection", where)
        keys = np.zeros(n_frames, dtype=np.int64)
    return keys


@READERS.register
class NexusReader(ScanReader):
    """A NeXus NXtomo file: one frame stack split into projections, flats and darks.

    Where the entry and its datasets are is the reader's parameters (:class:`NexusParams`).
    """

    format = "nexus"
    description = "NeXus NXtomo HDF5 (detector data split by image_key)"
    requires = "h5py"
    Params = NexusParams
    priority = 10

    @classmethod
    def sniff(cls, path: Path) -> bool:
        return sniff_hdf5(path, lambda f: find_nxtomo_entry(f) is not None)

    def _open(self) -> ScanLayout:
        path = Path(self.source)
        self._h5 = f = open_hdf5(path)
        p: NexusParams = self.options
        entry = self._entry(path)
        where = f"{path}:{entry.name}"
        data = _first(entry, p.paths("data"))
        if data is None:
            raise InputError(
                f"{where}: the detector dataset is missing (looked for "
                f"{' and '.join(p.paths('data'))}); the file holds: {hdf5_listing(f)}. Set "
                "ingest.nexus.data to its path relative to the entry (--set "
                "ingest.nexus.data=PATH)"
            )
        if data.ndim != 3:
            raise InputError(f"{where}/{p.paths('data')[0]}: frames must be 3-D (frame, y, x), "
                             f"got {data.shape}")
        self._data = data
        n_frames, rows, cols = (int(s) for s in data.shape)

        keys = _image_keys(entry, where, n_frames, p)
        self._index = {
            "projections": np.flatnonzero(keys == 0),
            "flat": np.flatnonzero(keys == 1),
            "dark": np.flatnonzero(keys == 2),
        }
        n_invalid = int(np.sum(keys == 3))
        if n_invalid:
            log.info("%s: %d frames have image_key 3 (invalid) and are skipped", where, n_invalid)
        n_proj = self._index["projections"].size
        if n_proj == 0:
            raise InputError(f"{where}: image_key marks no frame as a projection (key 0)")

        note = ""
        override = self._angles_override(n_proj)
        if override is not None:
            theta, note = override
        else:
            rot = _first(entry, p.paths("rotation_angle"))
            if rot is None:
                raise InputError(
                    f"{where}: the rotation angles are missing (looked for "
                    f"{' and '.join(p.paths('rotation_angle'))}); the file holds: "
                    f"{hdf5_listing(f)}. Set ingest.nexus.rotation_angle to their path relative "
                    "to the entry, or give the angles with --angles FILE"
                )
            raw = np.asarray(rot[()], dtype=np.float64).ravel()
            what = f"{where}/{p.paths('rotation_angle')[0]}"
            picked, note = select_projection_angles(
                raw, n_proj, image_key=keys if raw.size == n_frames else None, what=what,
                context=f" ({self._index['flat'].size} flats, {self._index['dark'].size} darks)",
            )
            # NXtomo gives rotation_angle in degrees unless its units attribute says otherwise
            theta = angles_to_radians(picked, unit=self.config.angles_unit,
                                      unit_attr=rot.attrs.get("units"), default="deg", what=what)
        dtype = np.dtype(data.dtype)
        specs = {name: ArraySpec((int(idx.size), rows, cols), dtype)
                 for name, idx in self._index.items() if idx.size}
        return ScanLayout(
            projections=specs["projections"],
            theta=theta,
            flat=specs.get("flat"),
            dark=specs.get("dark"),
            pixel_size_um=self._pixel_size(entry),
            source=str(path.resolve()),
            attrs={"angle_layout": note, "nexus_entry": entry.name} if note
            else {"nexus_entry": entry.name},
        )

    def _entry(self, path: Path) -> Any:
        """The NXtomo entry: ``ingest.nexus.entry``, else found by its attributes."""
        import h5py

        p: NexusParams = self.options
        if p.entry is None:
            entry = find_nxtomo_entry(self._h5, p)
            if entry is None:
                raise InputError(
                    f"{path}: no NXtomo entry (a group with NX_class=NXentry and "
                    f"definition=NXtomo, or with {p.paths('data')[0]}); the file holds: "
                    f"{hdf5_listing(self._h5)}. Is it a DXchange file (try --format dxchange)?"
                    " Else set ingest.nexus.entry to the entry's path"
                )
            return entry
        entry = self._h5.get(p.entry)
        if not isinstance(entry, h5py.Group):
            raise InputError(
                f"{path}: the NXtomo entry {p.entry} is not a group of the file; the file "
                f"holds: {hdf5_listing(self._h5)}. Set ingest.nexus.entry to the entry's path "
                "(--set ingest.nexus.entry=PATH), or null to find it by its NX_class"
            )
        return entry

    @staticmethod
    def _pixel_size(entry: Any) -> float | None:
        d = _first(entry, PIXEL_SIZE)
        if d is None:
            return None
        try:
            value = float(np.asarray(d[()]).ravel()[0])
        except (TypeError, ValueError, IndexError):
            return None
        if not (np.isfinite(value) and value > 0):
            return None
        return length_to_um(value, d.attrs.get("units"))

    def row_bytes(self) -> int:
        # a block holds every frame, and the split makes a copy of it
        n_frames, _, cols = self._data.shape
        return 2 * n_frames * cols * np.dtype(self._data.dtype).itemsize

    def read_rows(self, start: int, stop: int) -> dict[str, np.ndarray]:
        block = self._data[:, start:stop, :]
        out = {}
        for name, idx in self._index.items():
            if idx.size == 0:
                continue
            out[name] = block if idx.size == block.shape[0] else block[idx]
        return out

    def close(self) -> None:
        h5 = getattr(self, "_h5", None)
        if h5 is not None:
            h5.close()
            self._h5 = None
