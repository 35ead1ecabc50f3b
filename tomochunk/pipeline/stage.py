"""One stage of a run: what it reads, what it writes, what its result depends on, how to run it.

:func:`tomochunk.pipeline.run` knows stages only through this interface: it skips a stage
whose output :meth:`Stage.is_complete` with the recorded :attr:`Stage.hash`, and runs it
otherwise. No stage is special-cased by name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import stage_hash
from ..io import store
from ..io.urls import location

__all__ = ["Stage", "volume_summary"]


@dataclass(frozen=True)
class Stage:
    """A step of the pipeline.

    Attributes
    ----------
    name : str
        Its key in ``run.json`` (``ingest``, ``filter:median``, ...).
    inputs : tuple of str
        The names of the stages whose outputs it reads.
    output : path or URL
        What it writes (a Zarr store, or a folder with ``marker``).
    config : tuple
        What its result depends on besides its inputs: config sections (hashed through
        their :func:`~tomochunk.config.result_fields`) and plain values.
    action : callable
        Runs the stage and returns a one-line summary.
    hash : str
        :func:`~tomochunk.config.stage_hash` of the inputs' hashes and ``config``.
    marker : str or None
        A file inside ``output`` written last (the output is complete when it exists);
        None: ``output`` is an atomic Zarr store (:func:`tomochunk.io.store.is_complete`).
    resumable : bool
        An interrupted output of the same hash is kept and continued (training).
    storage_options : dict or None
        fsspec options of a URL output.
    """

    name: str
    inputs: tuple[str, ...]
    output: Any
    config: tuple[Any, ...]
    action: Callable[[], str]
    hash: str
    marker: str | None = None
    resumable: bool = False
    storage_options: dict[str, Any] | None = field(default=None)

    @classmethod
    def after(cls, upstream: Sequence[Stage], name: str, output: Any, config: tuple[Any, ...],
              action: Callable[[], str], **kw: Any) -> Stage:
        """A stage that reads the outputs of ``upstream``; its hash chains theirs.

        Parameters
        ----------
        upstream : sequence of Stage
            The stages it reads from (their hashes come first in its own).
        name, output, config, action, **kw
            As the attributes.
        """
        h = stage_hash(*(s.hash for s in upstream), *config)
        return cls(name, tuple(s.name for s in upstream), output, config, action, h, **kw)

    def is_complete(self) -> bool:
        """Whether the output is complete (not whether its hash matches)."""
        if self.marker is None:
            return store.is_complete(self.output, self.storage_options)
        return bool((location(self.output, self.storage_options) / self.marker).exists())

    def run(self) -> str:
        """Run the stage; a one-line summary of what it did."""
        return self.action()


def volume_summary(path: Any, var: str, seconds: float, storage_options: Any = None) -> str:
    """``"full 12x48x48 in 3.1 s (3.87 slices/s)"``: a stage output's size and speed."""
    ds = store.open_store(path, require_complete=False, storage_options=storage_options)
    shape = ds[var].shape
    n_slices = shape[-3]
    return (f"{var} {'x'.join(map(str, shape))} in {seconds:.1f} s "
            f"({n_slices / max(seconds, 1e-9):.2f} slices/s)")
