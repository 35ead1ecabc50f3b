"""Checks that a stage's output path cannot destroy its input.

A stage replaces its output only after the new one is complete, and with ``--overwrite``
it replaces it whole: an output that *is* the input (``filter a.zarr a.zarr``), contains
it (``recon run/scan.zarr run``) or resolves to either through a symbolic link would
therefore delete the input. :func:`check_distinct` refuses all of these before any work.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..errors import InputError, OutputExistsError

__all__ = ["check_distinct", "check_exists", "check_not_file"]


def _real(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.realpath(os.fspath(path)))


def check_distinct(output: str | os.PathLike[str], inputs: Iterable[Any],
                   what: str = "output") -> None:
    """Raise :class:`InputError` when ``output`` is, contains, is inside or resolves to an input.

    ``inputs`` may hold in-memory objects (datasets, models), which are skipped. Both the
    paths as given and their symlink-resolved forms are compared, so a symlinked output
    that points at the input (or a folder above it) is refused too.
    """
    out_given = Path(os.path.abspath(os.fspath(output)))
    out_real = _real(output)
    for inp in inputs:
        if not isinstance(inp, str | os.PathLike):
            continue
        in_given = Path(os.path.abspath(os.fspath(inp)))
        in_real = _real(inp)
        for o, i in ((out_given, in_given), (out_real, in_real), (out_given, in_real),
                     (out_real, in_given)):
            if o == i or o in i.parents or i in o.parents:
                how = "is" if o == i else ("contains" if o in i.parents else "is inside")
                if (o, i) != (out_given, in_given):
                    how += " (through a symbolic link)"
                raise InputError(
                    f"{what} {output} {how} the input {inp}; writing it would destroy the "
                    "input: choose an output path outside the input"
                )


def check_not_file(path: str | os.PathLike[str], what: str = "output folder") -> None:
    """Raise :class:`OutputExistsError` when a folder output is an existing plain file."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputExistsError(
            f"{what} {path} is an existing file, not a folder; choose another path "
            "(tomochunk never replaces a plain file with a folder)"
        )


def check_exists(**inputs: str | os.PathLike[str]) -> None:
    """Raise :class:`InputError` naming the first input (keyword = its name) that is absent."""
    for what, path in inputs.items():
        if not os.path.exists(path):
            raise InputError(f"{what} {path} does not exist; check the path")
