"""Cancel a training task that runs on a Dask worker.

Dask cannot interrupt a running task, so a training task would go on after the user
pressed Ctrl-C and write ``model.pt`` into the model folder, which then looks like a finished
model. The client marks the model folder (:func:`mark`); the task checks the mark after
every epoch and before writing the model (:func:`check`) and stops without writing it. The
checkpoint stays, so ``--resume`` continues from the last epoch. A new training clears the
mark (:func:`clear`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from ..errors import TomochunkError

__all__ = ["MARK", "TrainingCancelled", "mark", "clear", "check"]

MARK = ".tomochunk-cancelled"


class TrainingCancelled(TomochunkError, RuntimeError):
    """The client cancelled the training (Ctrl-C); no model was written."""


def mark(model_dir: Path | None) -> None:
    """Ask the training task writing ``model_dir`` to stop."""
    if model_dir is not None and model_dir.is_dir():
        with contextlib.suppress(OSError):
            (model_dir / MARK).touch()


def clear(model_dir: Path | None) -> None:
    """Remove a cancellation mark left by an earlier, cancelled training."""
    if model_dir is not None:
        with contextlib.suppress(FileNotFoundError):
            (model_dir / MARK).unlink()


def check(model_dir: Path | None) -> None:
    """Raise :class:`TrainingCancelled` when the client cancelled this training."""
    if model_dir is not None and (model_dir / MARK).exists():
        raise TrainingCancelled(
            f"training into {model_dir} was cancelled; no model was written (continue it "
            "with --resume)"
        )
