"""Start a Dask cluster on SLURM with dask-jobqueue: CPU workers plus GPU workers.

Both groups join ONE scheduler (the CPU SLURMCluster's); GPU jobs are added to its worker
spec with the ``slurm-gpu`` options, so tomochunk sees a single cluster whose GPU workers
advertise ``GPU=1``. The scheduler file is written for ``tomochunk run --scheduler-file``.

Usage (from a login node or inside an allocation)::

    DASK_CONFIG=deploy/slurm/jobqueue.yaml python deploy/slurm/launch.py \\
        --cpu-jobs 4 --gpu-jobs 1 --scheduler-file scheduler.json
    tomochunk run scan.h5 --out run1 --scheduler-file scheduler.json

``--dry-run`` prints both job scripts without submitting anything.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any


def make_cluster(**scheduler_options: Any) -> Any:
    """The CPU SLURMCluster (holds the scheduler); nothing is submitted yet."""
    from dask_jobqueue import SLURMCluster

    opts = {"dashboard_address": ":8787", **scheduler_options}
    return SLURMCluster(config_name="slurm-cpu", scheduler_options=opts)


def gpu_job_script(cluster: Any) -> str:
    """The batch script a GPU worker job would run (it joins ``cluster``'s scheduler)."""
    from dask_jobqueue.slurm import SLURMJob

    job = SLURMJob(scheduler=cluster.scheduler_address, name="gpu-0", config_name="slurm-gpu")
    return job.job_script()


def add_gpu_workers(cluster: Any, n: int) -> None:
    """Add ``n`` GPU worker jobs (``slurm-gpu`` options) to ``cluster``'s spec and submit them."""
    from dask_jobqueue.slurm import SLURMJob

    for i in range(n):
        cluster.worker_spec[f"gpu-{i}"] = {"cls": SLURMJob, "options": {"config_name": "slurm-gpu"}}
    cluster.sync(cluster._correct_state)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu-jobs", type=int, default=2)
    ap.add_argument("--gpu-jobs", type=int, default=0)
    ap.add_argument("--scheduler-file", default="scheduler.json")
    ap.add_argument("--dry-run", action="store_true", help="print job scripts, submit nothing")
    args = ap.parse_args()
    cluster = make_cluster()
    print(cluster.job_script())
    if args.gpu_jobs:
        print(gpu_job_script(cluster))
    if args.dry_run:
        cluster.close()
        return
    cluster.scale(jobs=args.cpu_jobs)
    if args.gpu_jobs:
        add_gpu_workers(cluster, args.gpu_jobs)
    Path(args.scheduler_file).write_text(
        json.dumps({"address": cluster.scheduler_address, "type": "Scheduler"})
    )
    print(f"scheduler file: {args.scheduler_file}  dashboard: {cluster.dashboard_link}")
    try:
        while True:
            time.sleep(60)
    except KeyboardInterrupt:
        cluster.close()


if __name__ == "__main__":
    main()
