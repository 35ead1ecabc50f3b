"""Let OpenMP threads sleep, not spin, while they wait (``OMP_WAIT_POLICY=PASSIVE``).

torch's CPU kernels run on an OpenMP thread pool whose threads, by default, spin at every
barrier. On a machine with more runnable processes than cores (a CI runner running other
jobs, a shared login node) a spinning thread burns the time slice its descheduled partner
needs, and training slows down by an order of magnitude: measured on 2 cores with a load
average of 18, 4 optimiser steps of the demo's MSD network took 49.7 s with 2 spinning
threads, 6.5 s with 1 thread and 1.8 s with 2 passive threads. The variable is read when
OpenMP starts in a process, so it is set before the CLI runs and before a LocalCluster
spawns its workers (which inherit it); a value the user set is kept.
"""

from __future__ import annotations

import os

__all__ = ["passive_openmp"]


def passive_openmp() -> None:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` for this process and the workers it starts."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
