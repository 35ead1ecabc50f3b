"""The common base of raw-scan readers and their registry.

A reader opens a raw scan, checks it cheaply (shapes, dtypes, angles) without reading the
pixels, and then serves it block by block of detector rows with :meth:`ScanReader.read_rows`.
Ingest therefore never holds more than one block in memory, whatever the size of the scan.

Readers register by format name in :data:`READERS` (like xarray's backend engines), so a new
format is one new class and no chain of ``if`` statements. A reader class is its own
component (:mod:`tomochunk.registry`): it carries a frozen ``Params`` dataclass (the
``ingest: {FORMAT: {...}}`` config section, e.g. the dataset paths of a DXchange file) and
reads its values from the config (:attr:`ScanReader.options`). The built-in readers register
when the registry is first looked up (:mod:`.memory`, :mod:`tomochunk.io.dxchange`,
:mod:`tomochunk.io.nexus`, :mod:`tomochunk.io.tiff`); other packages register a
:class:`ScanReader` subclass with ``READERS.register(cls)`` or through the
``tomochunk.readers`` entry-point group::

    @dataclass(frozen=True)
    class RawParams:
        header_bytes: int = 0

    @READERS.register
    class RawReader(ScanReader):
        format, description, Params = "raw", "headered raw frames", RawParams
        ...  # _open reads self.options.header_bytes
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import numpy as np

from ...config import IngestConfig
from ...errors import InputError
from ...registry import NoParams, Registry, build_params
from ...runtime.logs import get_logger
from .angles import angles_from_file, check_theta

__all__ = ["READERS", "ArraySpec", "ScanLayout", "ScanReader"]

log = get_logger("io.readers")

READERS: Registry[type[ScanReader]] = Registry(
    "scan format", group="tomochunk.readers",
    builtins=("tomochunk.io.readers.memory", "tomochunk.io.dxchange", "tomochunk.io.nexus",
              "tomochunk.io.tiff"))


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

    The class is the reader's component (:mod:`tomochunk.registry`): ``name`` (its
    ``format``), ``kind``, ``description``, ``requires``, ``Params`` (a frozen dataclass,
    default none), :meth:`params`, :meth:`param_names` and :meth:`is_available` are class
    attributes and class methods, so ``READERS.register(cls)`` registers it and the
    ``ingest: {FORMAT: {...}}`` config section comes from its ``Params``.

    Parameters
    ----------
    source : path or object
        What to read.
    config : IngestConfig
        Ingest options (angles file and unit, explicit flats/darks, pixel size) and the
        reader's parameters (``config.params_of(name)``, as :attr:`options`).

    Attributes
    ----------
    options : Params
        This reader's parameters from ``config`` (its defaults when the config sets none).
    """

    format: ClassVar[str] = ""
    #: Registry name and config section (set from :attr:`format` when not given).
    name: ClassVar[str] = ""
    kind: ClassVar[str] = "scan reader"
    description: ClassVar[str] = ""
    requires: ClassVar[str] = ""
    Params: ClassVar[type[Any]] = NoParams
    #: Order of :meth:`sniff` tries in ``--format auto`` (lower first).
    priority: ClassVar[int] = 100

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.format

    @classmethod
    def is_available(cls) -> bool:
        """Whether the reader works on this machine (its optional dependency imports)."""
        return True

    @classmethod
    def param_names(cls) -> list[str]:
        """The names of the fields of :attr:`Params`, in order."""
        return [f.name for f in dataclasses.fields(cls.Params)]

    @classmethod
    def params(cls, values: Any = None, /, **kwargs: Any) -> Any:
        """Build (and so validate) this reader's :attr:`Params` (see
        :meth:`tomochunk.registry.Component.params`)."""
        return build_params(cls, values, **kwargs)

    def __init__(self, source: Any, config: IngestConfig) -> None:
        self.source = source
        self.config = config
        self.options = config.components.get(self.name) or self.params()
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


