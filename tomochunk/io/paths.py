"""Checks that a stage's output path cannot destroy its input.

A stage replaces its output only after the new one is complete, and with ``--overwrite``
it replaces it whole: an output that *is* the input (``filter a.zarr a.zarr``), contains
it (``recon run/scan.zarr run``) or resolves to either through a symbolic link would
therefore delete the input. :func:`check_distinct` refuses all of these before any work.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import InputError, OutputExistsError

__all__ = ["check_distinct", "check_exists", "check_not_file"]


def _real(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.realpath(os.fspath(path)))


def _check_distinct_urls(output: str, inputs: Iterable[Any], what: str) -> None:
    """:func:`check_distinct` when the output or an input is an fsspec URL (compared as text)."""
    from .urls import is_url

    out = output.rstrip("/")
    for inp in inputs:
        if not is_url(inp):
            continue
        i = os.fspath(inp).rstrip("/")
        if out == i or i.startswith(out + "/") or out.startswith(i + "/"):
            how = "is" if out == i else ("contains" if i.startswith(out + "/") else "is inside")
            raise InputError(
                f"{what} {output} {how} the input {inp}; writing it would destroy the "
                "input: choose an output URL outside the input"
            )


def check_distinct(output: str | os.PathLike[str], inputs: Iterable[Any],
                   what: str = "output") -> None:
    """Raise :class:`InputError` when ``output`` is, contains, is inside or resolves to an input.

    ``inputs`` may hold in-memory objects (datasets, models), which are skipped. Both the
    paths as given and their symlink-resolved forms are compared, so a symlinked output
    that points at the input (or a folder above it) is refused too. fsspec URLs are
    compared as text with the URL inputs (a local path never clashes with a URL).
    """
    from .urls import is_url

    inputs = list(inputs)
    if is_url(output):
        _check_distinct_urls(os.fspath(output), inputs, what)
        return
    inputs = [i for i in inputs if not is_url(i)]
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
    from .urls import is_url

    if is_url(path):
        return  # an object store has no folders to clash with
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputExistsError(
            f"{what} {path} is an existing file, not a folder; choose another path "
            "(tomochunk never replaces a plain file with a folder)"
        )


def check_exists(storage_options: Mapping[str, Any] | None = None,
                 **inputs: str | os.PathLike[str]) -> None:
    """Raise :class:`InputError` naming the first input (keyword = its name) that is absent.

    An input may be an fsspec URL, looked up with ``storage_options``.
    """
    from .urls import exists, is_url, local_path

    for what, path in inputs.items():
        if is_url(path):
            if not exists(os.fspath(path), storage_options):
                raise InputError(f"{what} {path} does not exist; check the URL and "
                                 "--storage-option (credentials, endpoint_url)")
        elif not os.path.exists(local_path(path)):
            raise InputError(f"{what} {path} does not exist; check the path")
