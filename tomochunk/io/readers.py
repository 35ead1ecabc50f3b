"""The common base of raw-scan readers, their registry, and angle handling.

A reader opens a raw scan, checks it cheaply (shapes, dtypes, angles) without reading the
pixels, and then serves it block by block of detector rows with :meth:`ScanReader.read_rows`.
Ingest therefore never holds more than one block in memory, whatever the size of the scan.

Readers register by format name in :data:`READERS` (like xarray's backend engines), so a new
format is one new class and no chain of ``if`` statements. This module also holds the two
in-memory readers (an :class:`xarray.Dataset` and a ``.npy`` file) and the angle helpers that
every reader shares: unit detection, layout of angle lists that include flat/dark frames, and
the angle checks (finite, no duplicates; any order).
"""

from __future__ import annotations

import glob
import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Literal

import numpy as np

from .._registry import Registry
from ..config import IngestConfig
from ..errors import InputError
from ..runtime.logs import get_logger

__all__ = [
    "READERS",
    "ArraySpec",
    "ScanLayout",
    "ScanReader",
    "DatasetReader",
    "NpyReader",
    "parse_angle_unit",
    "angles_to_radians",
    "check_theta",
    "read_angles_file",
    "angles_from_file",
    "select_projection_angles",
    "length_to_um",
    "natural_key",
    "expand_paths",
]

log = get_logger("io.readers")

READERS: Registry[type[ScanReader]] = Registry("scan format")

AngleUnit = Literal["deg", "rad"]
_DEG = {"deg", "degs", "degree", "degrees", "°", "angular degree"}
_RAD = {"rad", "rads", "radian", "radians"}
_LENGTH_UM = {
    "m": 1e6, "meter": 1e6, "metre": 1e6, "meters": 1e6, "metres": 1e6,
    "mm": 1e3, "millimeter": 1e3, "millimetre": 1e3,
    "um": 1.0, "µm": 1.0, "μm": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0,
    "micrometre": 1.0, "micrometers": 1.0, "micrometres": 1.0,
    "nm": 1e-3, "nanometer": 1e-3, "nanometre": 1e-3,
}


# ---------------------------------------------------------------------------------------
# layout of a scan


@dataclass(frozen=True)
class ArraySpec:
    """Shape ``(frames, rows, cols)`` and dtype of one stack of the scan."""

    shape: tuple[int, int, int]
    dtype: np.dtype

    @property
    def row_bytes(self) -> int:
        """Bytes of one detector row across all frames of the stack."""
        return self.shape[0] * self.shape[2] * np.dtype(self.dtype).itemsize


@dataclass
class ScanLayout:
    """What a reader found in a raw scan, before any pixel is read.

    Attributes
    ----------
    projections : ArraySpec
        ``(angle, row, col)`` stack of projections.
    theta : numpy.ndarray
        One angle per projection, float64 radians, distinct, in acquisition order
        (monotonic or interleaved, e.g. golden-angle).
    flat, dark : ArraySpec or None
        Flat and dark stacks ``(frame, row, col)``, None when the scan has none.
    pixel_size_um : float or None
        Detector pixel size in micrometres when known.
    source, format : str
        Where the scan came from and the reader that read it.
    attrs : dict
        Extra root attributes for ``scan.zarr`` (JSON-serialisable), e.g. the angle layout.
    """

    projections: ArraySpec
    theta: np.ndarray
    flat: ArraySpec | None = None
    dark: ArraySpec | None = None
    pixel_size_um: float | None = None
    source: str = ""
    format: str = ""
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def n_angles(self) -> int:
        return self.projections.shape[0]

    @property
    def n_rows(self) -> int:
        return self.projections.shape[1]

    @property
    def n_cols(self) -> int:
        return self.projections.shape[2]

    @property
    def normalized(self) -> bool:
        """True when the scan has neither flats nor darks (taken as already normalised)."""
        return self.flat is None and self.dark is None

    def variables(self) -> dict[str, ArraySpec]:
        """The stacks present, by store variable name."""
        out = {"projections": self.projections}
        if self.flat is not None:
            out["flat"] = self.flat
        if self.dark is not None:
            out["dark"] = self.dark
        return out

    def validate(self) -> None:
        """Check shapes and angles; raise :class:`InputError` naming the problem and fix."""
        n, rows, cols = self.projections.shape
        if min(n, rows, cols) < 1:
            raise InputError(
                f"{self.source}: the projections have an empty shape {self.projections.shape}; "
                "a scan needs at least one projection of at least one pixel"
            )
        for name in ("flat", "dark"):
            spec = getattr(self, name)
            if spec is None:
                continue
            if spec.shape[0] < 1:
                raise InputError(f"{self.source}: the {name} stack holds no frames; remove it "
                                 f"or give at least one {name} image")
            if spec.shape[1:] != (rows, cols):
                raise InputError(
                    f"{self.source}: {name} frames have shape {spec.shape[1:]} (rows, cols) but "
                    f"the projections have {(rows, cols)}; {name} fields must come from the "
                    "same detector region (check the files, or the binning/cropping of the scan)"
                )
        self.theta = check_theta(self.theta, n, what=f"{self.source}: angles")


# ---------------------------------------------------------------------------------------
# reader base


class ScanReader(ABC):
    """A raw scan opened for streaming by blocks of detector rows.

    Subclasses set :attr:`format`, implement :meth:`_open` (cheap: headers and angles only)
    and :meth:`read_rows`, and may implement :meth:`sniff` for ``--format auto`` and
    :meth:`close`. A reader is a context manager.

    Parameters
    ----------
    source : path or object
        What to read.
    config : IngestConfig
        Ingest options (angles file and unit, explicit flats/darks, pixel size).
    """

    format: ClassVar[str] = ""
    #: Order of :meth:`sniff` tries in ``--format auto`` (lower first).
    priority: ClassVar[int] = 100

    def __init__(self, source: Any, config: IngestConfig) -> None:
        self.source = source
        self.config = config
        try:
            layout = self._open()
            if config.pixel_size_um is not None:
                layout.pixel_size_um = float(config.pixel_size_um)
            layout.format = layout.format or self.format
            layout.validate()
        except BaseException:
            self.close()
            raise
        self.layout = layout

    @classmethod
    def sniff(cls, path: Path) -> bool:
        """Whether ``path`` looks like this format (cheap; never raises)."""
        return False

    @abstractmethod
    def _open(self) -> ScanLayout:
        """Inspect the source and return its layout; read no pixel data."""

    @abstractmethod
    def read_rows(self, start: int, stop: int) -> dict[str, np.ndarray]:
        """Detector rows ``start:stop`` of every stack, keyed ``projections``/``flat``/``dark``.

        Each array has shape ``(frames, stop - start, cols)``.
        """

    def row_bytes(self) -> int:
        """Bytes read per detector row (sets how many rows fit in the memory budget)."""
        return sum(spec.row_bytes for spec in self.layout.variables().values())

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release file handles."""

    def __enter__(self) -> ScanReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # helpers shared by file readers ------------------------------------------------------

    def _angles_override(self, n_projections: int) -> tuple[np.ndarray, str] | None:
        """Angles (radians) and a layout note from ``config.angles``, or None if not given."""
        if self.config.angles is None:
            return None
        return angles_from_file(self.config.angles, n_projections, unit=self.config.angles_unit)


# ---------------------------------------------------------------------------------------
# angles


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        value = value.ravel()[0] if value.size else ""
        return _text(value)
    return str(value).strip()


def parse_angle_unit(value: Any, *, what: str = "angles") -> AngleUnit | None:
    """``"deg"``, ``"rad"`` or None (no unit) from a units attribute or option.

    Raises
    ------
    InputError
        For a unit that is not an angle (``"counts"``), naming ``--angles-unit`` as the fix.
    """
    if value is None:
        return None
    text = _text(value).lower()
    if text in ("", "auto", "none"):
        return None
    if text in _DEG:
        return "deg"
    if text in _RAD:
        return "rad"
    raise InputError(
        f"{what}: unit {text!r} is not an angle unit (degrees or radians); "
        "give the unit with --angles-unit deg|rad"
    )


def angles_to_radians(
    values: Any,
    *,
    unit: str = "auto",
    unit_attr: Any = None,
    default: AngleUnit | None = None,
    what: str = "angles",
) -> np.ndarray:
    """Angles as float64 radians.

    Parameters
    ----------
    values : array-like
        1-D angles.
    unit : {"auto", "deg", "rad"}
        Explicit unit (``--angles-unit``); ``auto`` uses ``unit_attr``, then ``default``,
        then the range: degrees when the angles span more than 2*pi.
    unit_attr : str or bytes, optional
        The file's units attribute.
    default : {"deg", "rad"}, optional
        The format's default unit (NXtomo: degrees).
    what : str
        Name used in messages.
    """
    theta = np.asarray(values, dtype=np.float64)
    if theta.ndim != 1:
        raise InputError(f"{what}: angles must be a 1-D list, got shape {theta.shape}")
    resolved = parse_angle_unit(unit, what=what) or parse_angle_unit(unit_attr, what=what)
    if resolved is None and default is not None:
        resolved = default
    if resolved is None:
        finite = theta[np.isfinite(theta)]
        span = float(finite.max() - finite.min()) if finite.size else 0.0
        resolved = "deg" if span > 2 * math.pi + 1e-6 else "rad"
        log.info("%s: no unit given; span %.6g -> taken as %s", what, span,
                 "degrees" if resolved == "deg" else "radians")
    check_angle_span(theta, resolved, what)
    return np.deg2rad(theta) if resolved == "deg" else theta.copy()


def check_angle_span(theta: np.ndarray, unit: str, what: str = "angles") -> None:
    """Refuse angles whose span does not fit their unit (degrees labelled rad, or reverse).

    A span of more than 2*pi labelled radians is degrees; a span under 2*pi/10 labelled
    degrees (under 0.63 deg: no tomography scan) is radians.
    """
    finite = theta[np.isfinite(theta)]
    if finite.size < 2:
        return
    span = float(finite.max() - finite.min())
    if unit == "rad" and span > 2 * math.pi + 1e-3:
        raise InputError(
            f"{what} span {span:.4g} but are labelled rad (radians): more than 2*pi, so they "
            "are degrees; pass --angles-unit deg (ingest.angles_unit: deg in a run config) "
            "or fix the file's units attribute"
        )
    if unit == "deg" and 0 < span < 2 * math.pi / 10:
        raise InputError(
            f"{what} span {span:.4g} but are labelled deg (degrees): under 0.63 degrees, so "
            "they are radians; pass --angles-unit rad (ingest.angles_unit: rad in a run "
            "config) or fix the file's units attribute"
        )


def check_theta(theta: Any, n_projections: int, *, what: str = "angles") -> np.ndarray:
    """Check one finite angle (radians) per projection, no two equal.

    The angles keep their acquisition order. Monotonic (increasing or decreasing) and
    interleaved orders (golden-angle, several interlaced sweeps) are all accepted:
    reconstruction sorts by angle where it needs to and splits by acquisition order
    (:mod:`tomochunk.recon.order`).

    Raises
    ------
    InputError
        On a count mismatch, a non-finite value or a duplicate; the message names the first
        offending angle (in degrees) and the fix.
    """
    theta = np.asarray(theta, dtype=np.float64)
    if theta.ndim != 1:
        raise InputError(f"{what}: angles must be a 1-D list, got shape {theta.shape}")
    if theta.size != n_projections:
        raise InputError(
            f"{what}: {theta.size} angles for {n_projections} projections; give exactly one "
            "angle per projection (e.g. --angles FILE)"
        )
    bad = np.flatnonzero(~np.isfinite(theta))
    if bad.size:
        i = int(bad[0])
        raise InputError(
            f"{what}: {bad.size} angle(s) are not finite (the first is angle {i} = {theta[i]}); "
            "fix or remove them (and their projections)"
        )
    if theta.size >= 2:
        order = np.argsort(theta, kind="stable")
        same = np.flatnonzero(np.diff(theta[order]) == 0)
        if same.size:
            pairs = sorted((int(min(order[p], order[p + 1])), int(max(order[p], order[p + 1])))
                           for p in same)
            i, j = pairs[0]
            raise InputError(
                f"{what}: angles {i} and {j} are equal ({np.rad2deg(theta[i]):.6g} deg; "
                f"{same.size} duplicate(s) in all); every projection needs its own angle. If "
                "the list includes flat/dark frames, give only the projection angles or add an "
                "image_key column (0 projection, 1 flat, 2 dark)"
            )
        d = np.diff(theta)
        if not (np.all(d > 0) or np.all(d < 0)):
            log.info("%s: the angles are not monotonic (an interleaved or golden-angle "
                     "acquisition); kept in acquisition order", what)
    return theta


def read_angles_file(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read an angles text file: one angle per line, optionally a second image_key column.

    Blank lines and ``#`` comments are skipped; columns may be separated by spaces, tabs or
    commas; one header line of words is allowed. A second column gives the image_key of every
    entry (0 projection, 1 flat, 2 dark, 3 invalid), as in NXtomo.

    Returns
    -------
    angles : numpy.ndarray
        float64, in the file's unit.
    image_key : numpy.ndarray or None
        int, when the file has two columns.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"angles file {path} does not exist; give an existing file with --angles")
    try:
        lines = path.read_text(errors="strict").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"angles file {path} cannot be read as text: {exc}") from exc
    rows: list[list[float]] = []
    seen_data = False
    for lineno, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].replace(",", " ").strip()
        if not text:
            continue
        parts = text.split()
        try:
            values = [float(p) for p in parts]
        except ValueError:
            if not seen_data and not rows and all(_is_word(p) for p in parts):
                seen_data = True  # one header line
                continue
            raise InputError(
                f"angles file {path}, line {lineno}: {line.strip()!r} is not a number; the file "
                "must hold one angle per line (optionally followed by an image_key)"
            ) from None
        seen_data = True
        if len(values) not in (1, 2):
            raise InputError(
                f"angles file {path}, line {lineno}: {len(values)} columns; expected 1 (angle) "
                "or 2 (angle, image_key)"
            )
        if rows and len(values) != len(rows[0]):
            raise InputError(
                f"angles file {path}, line {lineno}: {len(values)} columns but earlier lines "
                f"have {len(rows[0])}"
            )
        rows.append(values)
    if not rows:
        raise InputError(f"angles file {path} holds no angles")
    arr = np.asarray(rows, dtype=np.float64)
    if arr.shape[1] == 1:
        return arr[:, 0], None
    keys = arr[:, 1]
    if not np.all(np.isin(keys, (0, 1, 2, 3))):
        bad = int(np.flatnonzero(~np.isin(keys, (0, 1, 2, 3)))[0])
        raise InputError(
            f"angles file {path}: image_key {keys[bad]:g} of entry {bad} is not 0 (projection), "
            "1 (flat), 2 (dark) or 3 (invalid)"
        )
    return arr[:, 0], keys.astype(np.int64)


def _is_word(token: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z_][\w()\[\]./-]*", token))


def select_projection_angles(
    angles: np.ndarray,
    n_projections: int,
    *,
    image_key: np.ndarray | None = None,
    what: str = "angles",
    context: str = "",
) -> tuple[np.ndarray, str]:
    """Pick the angles of the projections from a list that may include flat/dark frames.

    Rules, in order:

    1. With an ``image_key`` (0 projection, 1 flat, 2 dark), the entries with key 0.
    2. With one entry per projection, the list as is.
    3. With more entries, the block of ``n_projections`` strictly monotonic entries whose
       leading entries all repeat its first angle and whose trailing entries all repeat its
       last angle (flats and darks taken at the end positions of the scan, e.g. Diamond's
       5 darks + 5 flats + 91 projections + 5 flats + 5 darks). When several blocks qualify,
       the central one is taken if it is among them. Repeats are equal within 1/1000 of the
       angular step.

    Returns
    -------
    angles : numpy.ndarray
        ``n_projections`` angles.
    note : str
        How the angles were chosen (empty for rule 2), stored as an attribute of the scan.

    Raises
    ------
    InputError
        When no rule resolves the layout; the message names the counts and the fix.
    """
    angles = np.asarray(angles, dtype=np.float64).ravel()
    n_total = angles.size
    if image_key is not None:
        keys = np.asarray(image_key).ravel()
        if keys.size != n_total:
            raise InputError(f"{what}: {keys.size} image_key values for {n_total} angles")
        picked = angles[keys == 0]
        note = (f"{what}: image_key gives {picked.size} projections, "
                f"{int(np.sum(keys == 1))} flats, {int(np.sum(keys == 2))} darks")
        if picked.size != n_projections:
            raise InputError(
                f"{what}: image_key marks {picked.size} entries as projections (key 0) but "
                f"there are {n_projections} projection images{context}; fix the image_key "
                "column or the set of images"
            )
        return picked, note
    if n_total == n_projections:
        return angles, ""
    if n_total > n_projections:
        candidates = _embedded_blocks(angles, n_projections)
        extra = n_total - n_projections
        central = extra // 2 if extra % 2 == 0 else None
        start = None
        if central is not None and central in candidates:
            start = central
        elif len(candidates) == 1:
            start = candidates[0]
        if start is not None:
            stop = start + n_projections
            note = (f"{what} lists {n_total} entries for {n_projections} projections; took "
                    f"entries {start}..{stop - 1} (0-based) as the projections: the {start} "
                    f"leading and {n_total - stop} trailing entries repeat the first and last "
                    "projection angles (flat/dark frames)")
            log.info("%s", note)
            return angles[start:stop], note
        hint = (f" (candidate first entries: {candidates})" if candidates else "")
        raise InputError(
            f"{what} lists {n_total} angles but there are {n_projections} projections"
            f"{context}; cannot tell which angles belong to the projections{hint}. Give an "
            "angles file with one angle per projection, or a second column with the image_key "
            "of every entry (0 projection, 1 flat, 2 dark)"
        )
    raise InputError(
        f"{what} lists {n_total} angles but there are {n_projections} projections{context}; "
        "give one angle per projection (are some angles missing, or extra projection files "
        "in the folder?)"
    )


def angles_from_file(
    path: str | Path, n_projections: int, *, unit: str = "auto", context: str = ""
) -> tuple[np.ndarray, str]:
    """Projection angles (radians) from an angles text file, and how they were chosen.

    Combines :func:`read_angles_file`, :func:`select_projection_angles` and
    :func:`angles_to_radians` (without a unit, degrees when the angles span more than 2*pi).
    """
    raw, keys = read_angles_file(path)
    what = f"angles file {path}"
    picked, note = select_projection_angles(raw, n_projections, image_key=keys, what=what,
                                            context=context)
    return angles_to_radians(picked, unit=unit, what=what), note


def _embedded_blocks(angles: np.ndarray, n: int) -> list[int]:
    """Starts of strictly monotonic blocks of length ``n`` whose head and tail repeat its ends."""
    total = angles.size
    if n < 2:
        return []
    d = np.diff(angles)
    step = float(np.median(np.abs(d[d != 0]))) if np.any(d != 0) else 0.0
    tol = 1e-3 * step
    out = []
    for start in range(total - n + 1):
        head, block, tail = angles[:start], angles[start:start + n], angles[start + n:]
        if not np.all(np.isfinite(block)):
            continue
        bd = np.diff(block)
        if not (np.all(bd > 0) or np.all(bd < 0)):
            continue
        if head.size and np.max(np.abs(head - block[0])) > tol:
            continue
        if tail.size and np.max(np.abs(tail - block[-1])) > tol:
            continue
        out.append(start)
    return out


# ---------------------------------------------------------------------------------------
# small shared helpers


def length_to_um(value: float, units: Any = None) -> float:
    """A detector length in micrometres from a value and its units attribute.

    Without units, values below 0.01 are taken as metres (no detector pixel is 10 nm) and
    others as micrometres.
    """
    value = float(value)
    if units is not None:
        key = _text(units).lower()
        if key in _LENGTH_UM:
            return value * _LENGTH_UM[key]
        log.warning("unknown length unit %r for the pixel size; assuming micrometres", key)
        return value
    return value * 1e6 if value < 1e-2 else value


def natural_key(path: Path) -> list[Any]:
    """Sort key ordering ``raw_2`` before ``raw_10`` (numbers compared as numbers)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def expand_paths(spec: str | Path, suffixes: tuple[str, ...]) -> list[Path]:
    """Files named by ``spec``: a file, a folder (its files with ``suffixes``) or a glob.

    The result is sorted naturally; an empty result raises :class:`InputError`.
    """
    path = Path(spec)
    if path.is_file():
        files = [path]
    elif path.is_dir():
        files = [p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes]
    else:
        files = [Path(p) for p in glob.glob(str(spec)) if Path(p).is_file()]
    if not files:
        raise InputError(f"{spec} names no file (expected a file, a folder of "
                         f"{'/'.join(suffixes)} files, or a glob pattern)")
    return sorted(files, key=natural_key)


def _as_stack(arr: Any, name: str, what: str) -> Any:
    """A 3-D ``(frames, rows, cols)`` view of a flat/dark array (2-D gets one frame)."""
    ndim = getattr(arr, "ndim", None)
    if ndim == 2:
        return arr[None]
    if ndim != 3:
        raise InputError(f"{what}: {name} must be 2-D (rows, cols) or 3-D (frames, rows, cols), "
                         f"got shape {getattr(arr, 'shape', None)}")
    return arr


def _spec(arr: Any) -> ArraySpec:
    return ArraySpec(tuple(int(s) for s in arr.shape), np.dtype(arr.dtype))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# in-memory and .npy readers


@READERS.register("xarray", description="an in-memory xarray.Dataset (projections, theta)")
class DatasetReader(ScanReader):
    """An :class:`xarray.Dataset` with ``projections(angle,row,col)``, ``theta(angle)`` in
    radians (unless its ``units`` attribute says degrees), optional ``flat`` and ``dark``.

    Dask-backed variables are read block by block, so a lazy dataset streams too.
    """

    format = "xarray"

    def _open(self) -> ScanLayout:
        ds = self.source
        what = "input dataset"
        if "projections" not in ds.variables:
            raise InputError(
                f"{what} has no variable 'projections'; it holds {sorted(map(str, ds.variables))}."
                " Build it with tomochunk.from_arrays(projections, theta, flat, dark)"
            )
        proj = ds["projections"]
        if proj.dims != ("angle", "row", "col"):
            raise InputError(f"{what}: projections must have dims ('angle', 'row', 'col'), got "
                             f"{proj.dims}; use tomochunk.from_arrays to build the dataset")
        if "theta" not in ds.variables:
            raise InputError(f"{what} has no coordinate 'theta' (one angle per projection, "
                             "radians); build it with tomochunk.from_arrays(projections, theta)")
        for name in ("flat", "dark"):
            if name in ds.variables and ds[name].dims != (name, "row", "col"):
                raise InputError(f"{what}: {name} must have dims ('{name}', 'row', 'col'), got "
                                 f"{ds[name].dims}")
        theta = angles_to_radians(
            np.asarray(ds["theta"].values).ravel(), unit=self.config.angles_unit,
            unit_attr=ds["theta"].attrs.get("units"), default="rad", what=f"{what} theta")
        override = self._angles_override(proj.shape[0])
        note = ""
        if override is not None:
            theta, note = override
        # keep the dataset's own metadata (e.g. a phantom's spec), minus stage markers
        attrs = {k: _jsonable(v) for k, v in ds.attrs.items()
                 if not str(k).startswith("tomochunk_") and _jsonable(v) is not None}
        if note:
            attrs["angle_layout"] = note
        return ScanLayout(
            projections=_spec(proj),
            theta=theta,
            flat=_spec(ds["flat"]) if "flat" in ds.variables else None,
            dark=_spec(ds["dark"]) if "dark" in ds.variables else None,
            pixel_size_um=_opt_float(ds.attrs.get("pixel_size_um")),
            source=str(ds.attrs.get("source", "xarray.Dataset")),
            attrs=attrs,
        )

    def read_rows(self, start: int, stop: int) -> dict[str, np.ndarray]:
        ds = self.source
        return {
            name: np.asarray(ds[name].isel(row=slice(start, stop)).values)
            for name in self.layout.variables()
        }


@READERS.register("numpy", description=".npy projections (angle,row,col) with --angles")
class NpyReader(ScanReader):
    """A ``.npy`` file of projections ``(angle, row, col)``, memory-mapped.

    The angles come from ``config.angles``; flats and darks, when any, from ``config.flats``
    and ``config.darks`` (``.npy`` files, 2-D or 3-D). Without them the projections are
    taken as already normalised.
    """

    format = "numpy"
    priority = 40

    @classmethod
    def sniff(cls, path: Path) -> bool:
        return path.is_file() and path.suffix.lower() == ".npy"

    def _open(self) -> ScanLayout:
        path = Path(self.source)
        self._arrays = {"projections": _load_npy(path, "projections")}
        proj = self._arrays["projections"]
        if proj.ndim != 3:
            raise InputError(f"{path}: projections must be 3-D (angle, row, col), got shape "
                             f"{proj.shape}")
        for name in ("flat", "dark"):
            spec = getattr(self.config, f"{name}s")
            if spec is not None:
                files = expand_paths(spec, (".npy",))
                if len(files) != 1:
                    raise InputError(f"{spec}: give one .npy file of {name} fields, found "
                                     f"{len(files)}")
                self._arrays[name] = _as_stack(_load_npy(files[0], name), name, str(files[0]))
        override = self._angles_override(proj.shape[0])
        if override is None:
            raise InputError(
                f"{path} holds only projections; give their angles with --angles FILE "
                "(one angle per line)"
            )
        theta, note = override
        return ScanLayout(
            projections=_spec(proj),
            theta=theta,
            flat=_spec(self._arrays["flat"]) if "flat" in self._arrays else None,
            dark=_spec(self._arrays["dark"]) if "dark" in self._arrays else None,
            source=str(path.resolve()),
            attrs={"angle_layout": note} if note else {},
        )

    def read_rows(self, start: int, stop: int) -> dict[str, np.ndarray]:
        return {name: np.array(arr[:, start:stop, :]) for name, arr in self._arrays.items()}

    def close(self) -> None:
        self._arrays = {}


def _load_npy(path: Path, name: str) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} cannot be read as a .npy array of {name}: {exc}") from exc


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON types (numpy scalars and arrays converted), or None."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list | tuple):
        items = [_jsonable(v) for v in value]
        return None if any(i is None for i in items) else items
    if isinstance(value, dict):
        items = {str(k): _jsonable(v) for k, v in value.items()}
        return None if any(i is None for i in items.values()) else items
    return None


def _opt_float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None



# ---------------------------------------------------------------------------------------
# HDF5 helpers shared by the DXchange and NeXus readers


def open_hdf5(path: Path) -> Any:
    """Open an HDF5 file read-only; raise :class:`InputError` when it is not one."""
    import h5py

    try:
        return h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path} cannot be opened as an HDF5 file ({exc}); is it complete, "
                         "and is --format right?") from exc


def hdf5_listing(h5: Any, limit: int = 40) -> str:
    """A one-line listing of the datasets of an open HDF5 file (for error messages)."""
    import h5py

    items: list[str] = []

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset):
            items.append(f"/{name} {tuple(obj.shape)}")

    h5.visititems(visit)
    if not items:
        return "no datasets"
    more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more
