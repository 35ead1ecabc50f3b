"""The whole pipeline as resumable stages: ingest -> recon -> train -> denoise -> filters -> report.

Layout of RUN_DIR (contract)::

    scan.zarr  recon.zarr  model/  denoised.zarr  median.zarr  nlm.zarr  [iternlm.zarr]
    report/    run.json    config.yaml    tomochunk.log    [truth.zarr for synthetic runs]

Modules: :mod:`.stage` (the :class:`Stage` interface), :mod:`.stages` (the stages of a run
built from its config, one per baseline filter method), :mod:`.record` (``run.json`` and the
run folder), :mod:`.runner` (:func:`run`: skip, resume or re-do each stage) and :mod:`.demo`.
"""

from __future__ import annotations

from ..overrides import apply_overrides
from .demo import demo, demo_config, replace_cluster
from .runner import RunResult, run
from .stage import Stage
from .stages import build_stages, filter_stage_config, recon_stage_config

__all__ = ["run", "demo", "demo_config", "RunResult", "STAGES", "apply_overrides", "Stage",
           "build_stages", "filter_stage_config", "recon_stage_config",
           "replace_cluster"]

STAGES = ("ingest", "recon", "train", "denoise", "filters", "report")

#: The stages of a run (the name that tests and tools used before the package split).
_stages = build_stages
