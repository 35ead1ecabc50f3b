"""The scan specification: everything that defines a simulated scan.

A :class:`ScanSpec` plus its ``seed`` determines every array that :mod:`tomochunk.phantom`
produces, bit for bit. It serialises to JSON (the ``phantom_spec`` attribute of a simulated
``scan.zarr``) and back.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ConfigError

__all__ = ["KINDS", "PRESETS", "ScanSpec", "demo_spec"]

#: Phantom kinds :func:`tomochunk.phantom.make_shapes` can build.
KINDS = ("cells", "shepp", "disk")

#: Fraction of the field-of-view width covered by the object's body (non-ROI ``cells``).
BODY_RADIUS = 0.42

#: Line integral through the body's diameter with the automatic ``attenuation_scale``: a
#: weakly absorbing specimen (26 % absorbed), so the beam profile, not the object, sets the
#: noise pattern and the noise grows toward the field edges as in Flenner et al. (2022).
ABSORPTION = 0.3

#: Body radius, in units of the field-of-view width, in ROI mode (wider than the field).
ROI_BODY_RADIUS = 0.9


@dataclass(frozen=True)
class ScanSpec:
    """Everything that defines a simulated parallel-beam scan; deterministic by ``seed``.

    Geometry: the volume is ``(n_z, n_xy, n_xy)`` voxels ``(z, y, x)``; detector row ``r``
    sees slice ``z = r`` (rotation axis along the rows) and the detector has ``n_xy``
    columns. The rotation axis projects exactly onto detector coordinate
    ``(n_xy - 1) / 2`` (pixel ``i`` is centred at ``i``). ``n_angles`` angles are spread
    evenly over ``[0, pi)``, endpoint excluded.

    Parameters
    ----------
    n_z : int
        Number of slices = detector rows.
    n_xy : int
        Slice width and height = detector columns (the field of view).
    n_angles : int
        Number of projections over ``[0, pi)``.
    photons : float
        Mean flat-field counts per pixel at the beam centre (dark excluded). Lower means
        noisier.
    beam_falloff : float
        Flat-field intensity at the left/right field edge relative to the centre, in
        ``(0, 1]``. The beam profile is the round Gaussian ``beam_falloff ** rho**2``
        (``rho`` = distance from the detector centre over the half width), as behind a
        beam-shaping condenser, so noise grows toward the field edges.
    ring_defects : int
        Number of detector columns whose gain differs between the flats and the
        projections (they make ring artefacts that survive flat-field correction).
    ring_strength : float
        Typical relative gain error of a defective column (each is
        ``1 +- ring_strength * U(0.5, 1.5)``). The default 0.01 offsets ``-log`` by about
        0.01, a few % of the weakly absorbing body: rings as clear as the lattice.
    pixel_gain_sigma : float
        Relative per-pixel gain non-uniformity of the detector, present in flats *and*
        projections (flat-field correction removes it).
    n_flats, n_darks : int
        Number of flat-field and dark frames.
    dark_level : float
        Mean dark counts per pixel (with a 5 % fixed pattern, in every frame).
    roi : bool
        Region-of-interest (local) tomography: the object is wider than the field of view,
        so projections do not fall to zero at the detector edges.
    lattice : bool
        Add a patch with a fine periodic square lattice of holes (``cells`` kind), like
        the butterfly-scale nanostructure near the resolution limit.
    lattice_period : float
        Lattice period in pixels (a few pixels: near the resolution limit).
    attenuation_scale : float or None
        Linear attenuation of the object's body per pixel. ``None`` picks
        ``0.3 / (2 * 0.42 * n_xy)``: one body diameter of a non-ROI object absorbs
        ``1 - exp(-0.3) = 26 %`` at any size (a weakly absorbing specimen such as the
        butterfly scale; about 0.0028 per pixel at ``n_xy = 128``), so the beam profile
        sets where the noise is strongest. Features have contrasts relative to it.
    pixel_size_um : float
        Pixel size in micrometres (stored as the ``pixel_size_um`` attribute).
    seed : int
        Seed of every random choice (geometry, gains, noise).
    kind : {"cells", "shepp", "disk"}
        ``cells``: a cylindrical body with ellipsoidal cells, nuclei, dense granules and
        the hole lattice. ``shepp``: the modified Shepp-Logan phantom extruded into
        ellipsoids. ``disk``: one uniform cylinder (for analytic checks).
    noise : bool
        Draw Poisson noise. With ``False`` the counts are their expectations (floats).
    supersample : int
        Sub-slices per detector row (and per slice) used to integrate over the pixel
        height; in-plane the detector integration is exact.
    dtype : {"float32", "uint16"}
        Storage type of the raw counts.
    arc_deg : float
        Rotation range in degrees: 180 (default) or 360. The ``n_angles`` angles of an
        ordered scan are spread evenly over ``[0, arc)``.
    angle_order : {"ordered", "golden"}
        ``ordered``: angle ``i`` is ``i * arc / n_angles``. ``golden``: angle ``i`` is
        ``arc * frac(i * (sqrt(5) - 1) / 2)`` (golden-angle acquisition: every prefix of the
        sequence covers the arc nearly evenly; stored in acquisition order).
    detector_cols : int or None
        Half acquisition (offset axis): the detector has only this many columns, the first
        ``detector_cols`` of the ``n_xy`` field, so the rotation axis ``(n_xy - 1) / 2``
        lies near its right edge and each projection sees a bit more than half the object;
        needs ``arc_deg = 360``. None: the full ``n_xy`` columns (a normal scan).
    """

    n_z: int = 32
    n_xy: int = 128
    n_angles: int = 180
    photons: float = 2000.0
    beam_falloff: float = 0.5
    ring_defects: int = 6
    ring_strength: float = 0.01
    pixel_gain_sigma: float = 0.02
    n_flats: int = 10
    n_darks: int = 10
    dark_level: float = 100.0
    roi: bool = False
    lattice: bool = True
    lattice_period: float = 5.0
    attenuation_scale: float | None = None
    pixel_size_um: float = 0.05
    seed: int = 0
    kind: str = "cells"
    noise: bool = True
    supersample: int = 4
    dtype: str = "float32"
    arc_deg: float = 180.0
    angle_order: str = "ordered"
    detector_cols: int | None = None

    def __post_init__(self) -> None:
        def bad(name: str, why: str, fix: str) -> ConfigError:
            return ConfigError(f"ScanSpec.{name}={getattr(self, name)!r} {why}; {fix}")

        for name, low in (("n_z", 1), ("n_xy", 8), ("n_angles", 2), ("n_flats", 1),
                          ("n_darks", 1), ("supersample", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise bad(name, f"is not an integer >= {low}", f"pass an integer >= {low}")
        if isinstance(self.ring_defects, bool) or not isinstance(self.ring_defects, int) \
                or not 0 <= self.ring_defects <= self.n_xy // 2:
            raise bad("ring_defects", f"is not an integer in [0, n_xy/2 = {self.n_xy // 2}]",
                      "use fewer defective columns")
        if not (math.isfinite(self.photons) and self.photons > 0):
            raise bad("photons", "is not a positive number", "pass e.g. photons=2000")
        if not (0 < self.beam_falloff <= 1):
            raise bad("beam_falloff", "is not in (0, 1]",
                      "pass the edge/centre flat-field ratio, e.g. 0.5 (1 = uniform beam)")
        for name in ("ring_strength", "pixel_gain_sigma", "dark_level"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise bad(name, "is negative or not finite", "pass a number >= 0")
        if self.ring_strength >= 0.5 or self.pixel_gain_sigma >= 0.2:
            raise ConfigError(
                "ScanSpec.ring_strength must be < 0.5 and pixel_gain_sigma < 0.2 "
                f"(got {self.ring_strength}, {self.pixel_gain_sigma}); detector gains must stay "
                "positive: use smaller values"
            )
        if not (math.isfinite(self.lattice_period) and self.lattice_period >= 2):
            raise bad("lattice_period", "is below 2 pixels (beyond Nyquist)",
                      "pass a period of a few pixels, e.g. 5")
        if self.attenuation_scale is not None and not (
            math.isfinite(self.attenuation_scale) and self.attenuation_scale > 0
        ):
            raise bad("attenuation_scale", "is not a positive number",
                      "pass e.g. 0.01 (per pixel) or None for the automatic value")
        if not (math.isfinite(self.pixel_size_um) and self.pixel_size_um > 0):
            raise bad("pixel_size_um", "is not a positive number", "pass e.g. 0.05")
        if self.kind not in KINDS:
            raise bad("kind", "is not a known phantom kind", f"use one of {', '.join(KINDS)}")
        if self.arc_deg not in (180.0, 360.0):
            raise bad("arc_deg", "is not 180 or 360", "pass arc_deg=180 or arc_deg=360")
        if self.angle_order not in ("ordered", "golden"):
            raise bad("angle_order", "is not a known order", "use 'ordered' or 'golden'")
        if self.detector_cols is not None:
            if isinstance(self.detector_cols, bool) or not isinstance(self.detector_cols, int) \
                    or not self.n_xy // 2 + 2 <= self.detector_cols <= self.n_xy:
                raise bad("detector_cols", f"is not an integer in [{self.n_xy // 2 + 2}, "
                          f"n_xy = {self.n_xy}]",
                          "pass a bit more than half the field width, or None")
            if self.arc_deg != 360.0:
                raise bad("detector_cols", "needs a 360 degree scan (half acquisition)",
                          "pass arc_deg=360")
        if self.dtype not in ("float32", "uint16"):
            raise bad("dtype", "is not a supported count type", "use 'float32' or 'uint16'")
        if self.dtype == "uint16" and not self.noise:
            raise ConfigError(
                "ScanSpec(dtype='uint16', noise=False) would round the noise-free expected "
                "counts; use dtype='float32' for noise-free scans"
            )
        if self.dtype == "uint16" and self.photons * 1.5 + self.dark_level * 1.5 > 60000:
            raise ConfigError(
                f"ScanSpec.photons={self.photons} overflows uint16 counts; "
                "use dtype='float32' or fewer photons"
            )

    # -- derived quantities -------------------------------------------------------------
    @property
    def center(self) -> float:
        """Detector column (and volume x/y index) of the rotation axis: ``(n_xy - 1) / 2``."""
        return (self.n_xy - 1) / 2.0

    @property
    def n_cols(self) -> int:
        """Detector columns: ``detector_cols`` in half acquisition, else ``n_xy``."""
        return self.n_xy if self.detector_cols is None else int(self.detector_cols)

    @property
    def mu(self) -> float:
        """Body attenuation per pixel (``attenuation_scale`` or its automatic value)."""
        if self.attenuation_scale is not None:
            return float(self.attenuation_scale)
        return ABSORPTION / (2.0 * BODY_RADIUS * self.n_xy)

    @property
    def lattice_frequency(self) -> float:
        """Fundamental spatial frequency of the hole lattice, cycles per pixel (1/period)."""
        return 1.0 / self.lattice_period

    # -- serialisation ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain dict of the fields (JSON-compatible)."""
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """JSON text of the fields (sorted keys): the ``phantom_spec`` store attribute."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScanSpec:
        """Build from a dict; unknown keys raise :class:`ConfigError`."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(
                f"unknown ScanSpec field(s) {', '.join(unknown)}; valid fields are "
                f"{', '.join(sorted(names))}"
            )
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> ScanSpec:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def replace(self, **changes: Any) -> ScanSpec:
        """Copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


#: Sized presets (see :func:`demo_spec`).
PRESETS: dict[str, dict[str, Any]] = {
    # tiny: unit tests of every stage (simulates in well under a second)
    "test": dict(n_z=16, n_xy=64, n_angles=90, photons=2000.0),
    # the demo: 64 slices of 128^2, 256 angles; the lattice CNR of the full FBP is about
    # 1.5 (hardly visible, as the butterfly scale of Flenner et al. 2022), a steeper
    # condenser beam profile so the noise visibly grows toward the field edges, and 40
    # flats so that flat-field noise makes weaker rings than the defects; small enough for
    # recon + MSD training on 2 CPU cores
    "demo": dict(n_z=64, n_xy=128, n_angles=256, photons=800.0, beam_falloff=0.3, n_flats=40),
    # benchmarks: 128 slices of 256^2, 512 angles, same noise regime as the demo
    "bench": dict(n_z=128, n_xy=256, n_angles=512, photons=800.0, beam_falloff=0.3,
                  n_flats=40),
}


def demo_spec(size: Literal["test", "demo", "bench"] = "demo", **overrides: Any) -> ScanSpec:
    """A sized preset :class:`ScanSpec`.

    Parameters
    ----------
    size : {"test", "demo", "bench"}
        ``test``: 16 x 64 x 64 voxels, 90 angles, 2000 photons (unit tests).
        ``demo``: 64 x 128 x 128, 256 angles, 800 photons, beam falloff 0.3, 40 flats (the
        ``tomochunk demo`` scan). ``bench``: 128 x 256 x 256, 512 angles, otherwise as
        ``demo``.
    **overrides
        Any :class:`ScanSpec` field, e.g. ``seed=3`` or ``roi=True``.
    """
    if size not in PRESETS:
        raise ConfigError(f"unknown phantom preset {size!r}; use one of {', '.join(PRESETS)}")
    return ScanSpec(**{**PRESETS[size], **overrides})
