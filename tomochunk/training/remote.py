"""Training as one Dask task: submitted from the client, epochs shown here as they finish.

The task asks for ``resources={"GPU": 1}`` if a worker advertises a GPU, reads its slab from
the Zarr store itself (only the path travels through the scheduler), writes the model
directory and returns CPU tensors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import TrainConfig, from_dict, to_dict
from ..runtime.logs import get_logger
from ..runtime.progress import wait_for
from . import cancel
from .loop import EpochReporter
from .modelfile import TrainedModel

__all__ = ["model_from_payload", "submit_training"]

log = get_logger("train")


def _train_task(
    recon_path: str,
    model_dir: str | None,
    cfg_dict: dict[str, Any],
    overwrite: bool,
    topic: str | None = None,
    storage_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Dask task: train from the store at ``recon_path``; return CPU weights + metadata.

    ``recon_path`` may be an fsspec URL, read with ``storage_options``.

    Every epoch's record is published as a worker event on ``topic`` so the client can show
    progress.
    """
    on_epoch = None
    if topic is not None:
        from distributed import get_worker

        worker = get_worker()

        def on_epoch(rec: dict[str, Any]) -> None:
            worker.log_event(topic, rec)
            cancel.check(Path(model_dir) if model_dir else None)

    cfg = from_dict(TrainConfig, cfg_dict)
    from ..io.urls import is_url
    from .n2i import _train_here

    state, meta, history, _ = _train_here(
        recon_path if is_url(recon_path) else Path(recon_path),
        Path(model_dir) if model_dir else None, cfg, overwrite, on_epoch, storage_options
    )
    return {"state_dict": state, "metadata": meta, "history": history}


def submit_training(client: Any, path: Path | str, model_dir: Path | None, cfg: TrainConfig,
            overwrite: bool, storage_options: Any = None) -> dict[str, Any]:
    """Run :func:`_train_task` on the cluster, showing its epochs here as they finish."""
    import uuid

    from ..runtime.gpu import task_resources

    resources = task_resources(client)
    log.info("training as one Dask task%s", " on a GPU worker" if resources else "")
    topic = f"tomochunk-train-{uuid.uuid4().hex}"
    reporter = EpochReporter(cfg.epochs)
    client.subscribe_topic(topic, lambda event: reporter(event[1]))
    future = None
    try:
        future = client.submit(
            _train_task, path if isinstance(path, str) else str(path.resolve()),
            str(model_dir.resolve()) if model_dir else None,
            to_dict(cfg), overwrite, topic, dict(storage_options or {}),
            resources=resources, pure=False,
        )
        wait_for(future)  # Ctrl-C lands here, not inside the client's event loop
        payload = future.result()
    except BaseException:
        cancel.mark(model_dir)  # the task stops after its epoch and writes no model
        if future is not None:
            future.cancel()
        raise
    finally:
        client.unsubscribe_topic(topic)
        reporter.close()
    # events still in flight when the result arrived: report them from the history
    for rec in payload["history"]["epochs"]:
        if rec["epoch"] > reporter.last:
            log.info("epoch %d: train loss %.5g, validation loss %.5g (%.1f s)",
                     rec["epoch"], rec["train_loss"], rec["val_loss"], rec["seconds"])
    return payload


def model_from_payload(payload: dict[str, Any]) -> TrainedModel:
    from ..nn.registry import build_network

    meta = payload["metadata"]
    net = build_network(meta["network"], meta["in_channels"], 1, **meta["network_params"])
    net.load_state_dict(payload["state_dict"])
    return TrainedModel(net.eval(), meta, payload["history"])
