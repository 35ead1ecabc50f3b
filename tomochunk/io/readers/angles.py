"""Angle handling shared by every reader: unit detection, layout of angle lists that include
flat/dark frames, and the angle checks (finite, no duplicates; any order)."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ...errors import InputError
from ...runtime.logs import get_logger

__all__ = ["AngleUnit", "parse_angle_unit", "angles_to_radians", "check_angle_span",
           "check_theta", "read_angles_file", "select_projection_angles", "angles_from_file"]

log = get_logger("io.readers")


AngleUnit = Literal["deg", "rad"]
_DEG = {"deg", "degs", "degree", "degrees", "°", "angular degree"}
_RAD = {"rad", "rads", "radian", "radians"}

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


