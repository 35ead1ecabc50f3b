"""Write to a temporary sibling, then rename into place: nothing partial ever looks complete.

Every local output of tomochunk (stores, model files, manifests, exports, truth arrays) is
written under a hidden temporary name next to its target and renamed onto it only once it is
whole; a rename within one folder is atomic. A target that exists is first moved aside and
removed after the swap, so a crash at any moment leaves either the old or the new output.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

__all__ = ["PARTIAL", "OLD", "atomic_file", "atomic_write_text", "remove_path",
           "remove_stale_partials", "swap_into_place", "temp_sibling"]

#: Marks a temporary output: ``.<name>.partial-<pid>-<random>``.
PARTIAL = ".partial-"
#: Marks an output moved aside during a swap: ``.<name>.old-<random>``.
OLD = ".old-"


def temp_sibling(path: str | os.PathLike[str], tag: str = PARTIAL, suffix: str = "") -> Path:
    """A hidden, unique name next to ``path``: ``.<name><tag><pid>-<random><suffix>``.

    Parameters
    ----------
    path : path
        The target.
    tag : str
        What the name says it is (``.partial-`` or ``.tmp-``).
    suffix : str
        Appended (``.npy`` keeps :func:`numpy.save` from adding its own).

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    return path.with_name(f".{path.name}{tag}{os.getpid()}-{uuid.uuid4().hex[:8]}{suffix}")


def remove_path(p: Path) -> None:
    """Remove a file or a folder tree if it exists (errors ignored)."""
    if p.is_dir():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        p.unlink(missing_ok=True)


def swap_into_place(tmp: Path, target: Path,
                    remove: Callable[[Path], None] = remove_path) -> None:
    """Rename ``tmp`` onto ``target``; an existing target is moved aside, then removed.

    Parameters
    ----------
    tmp : pathlib.Path
        The complete new output (file or folder).
    target : pathlib.Path
        Where it belongs.
    remove : callable
        Removes the old output once the new one is in place.
    """
    if target.exists():
        old = target.with_name(f".{target.name}{OLD}{uuid.uuid4().hex[:8]}")
        os.replace(target, old)
        os.replace(tmp, target)
        remove(old)
    else:
        os.replace(tmp, target)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], tag: str = ".tmp-",
                suffix: str = "") -> Iterator[Path]:
    """Yield a temporary sibling of the file ``path``; rename it onto ``path`` on success.

    The temporary file is removed whatever happens (an exception propagates unchanged).

    Parameters
    ----------
    path : path
        The file to write.
    tag, suffix : str
        Parts of the temporary name (:func:`temp_sibling`).

    Yields
    ------
    pathlib.Path
        Write the whole file here.
    """
    path = Path(path)
    tmp = temp_sibling(path, tag, suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to the file ``path`` atomically (:func:`atomic_file`)."""
    with atomic_file(path) as tmp:
        tmp.write_text(text)


def remove_stale_partials(path: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary siblings left by interrupted writes of ``path``; return them.

    A URL has none (its output is staged locally, see :func:`tomochunk.io.urls.staging_dir`).
    """
    from .urls import is_url

    if is_url(path):
        return []
    path = Path(path)
    removed: list[Path] = []
    if not path.parent.exists():
        return removed
    for p in path.parent.glob(f".{path.name}{PARTIAL}*"):
        shutil.rmtree(p, ignore_errors=True)
        removed.append(p)
    return removed
