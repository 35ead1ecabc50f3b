"""The Dask runtime layer: client, cluster, thread policy, GPUs, progress, logging.

One job per module:

- :mod:`.client`: the client lookup (:func:`current_client`);
- :mod:`.cluster`: connect to a cluster or start a LocalCluster (:func:`connect`);
- :mod:`.threads`: the thread policy (:func:`thread_count`);
- :mod:`.gpu`: GPU resources and routing (:func:`gpu_resources`, :func:`gpu_cluster`);
- :mod:`.progress`: compute with progress bars (:func:`compute`, :func:`tqdm`);
- :mod:`.logs`: loggers, the console and log-file set-up of the CLI and of ``run``, and
  the forwarding of the workers' logs;
- :mod:`.openmp_env` and :mod:`.worker_signals`: process set-up of the CLI and workers.

Stages and kernels import from here; nothing here imports a stage.
"""

from __future__ import annotations

from .client import current_client
from .logs import get_logger
from .threads import thread_count

__all__ = ["current_client", "get_logger", "thread_count"]
