"""The config sections with components (training, filters) and :class:`RunConfig`.

:class:`TrainConfig` and :class:`FilterConfig` keep their components' parameters as
sections of their own (:mod:`tomochunk.config.components`); :class:`RunConfig` nests one
section per stage. Import them from :mod:`tomochunk.config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .components import ComponentSections, with_components
from .hashing import BY_COMPONENT, NOT_IN_CHECKPOINT, NOT_IN_RESULT
from .sections import (
    ClusterConfig,
    DenoiseConfig,
    ExportConfig,
    IngestConfig,
    IOConfig,
    PreprocessConfig,
    ReconConfig,
    ReportConfig,
    _Section,
)

__all__ = ["TrainConfig", "FilterConfig", "RunConfig"]


@with_components("tomochunk.nn.registry:NETWORKS", {
    "depth": (("msd", "depth"),), "width": (("msd", "width"),),
    "unet_depth": (("unet", "depth"),), "unet_features": (("unet", "features"),),
    "unet_space_to_depth": (("unet", "space_to_depth"),)}, what="training")
@dataclass(frozen=True)
class TrainConfig(ComponentSections, _Section):
    """Noise2Inverse training.

    Attributes
    ----------
    network : str
        Registered network name: msd (default) or unet.
    components : mapping
        Network parameters by network name, written as sections of their own:
        ``msd: {depth: 100, width: 1}``, ``unet: {depth: 3, features: 32,
        space_to_depth: 1}`` (see ``tomochunk.nn``). The old flat keys ``depth``, ``width``,
        ``unet_depth``, ``unet_features``, ``unet_space_to_depth`` still work (deprecated).
        They change the training result and must match for a resume (the stage hash and
        the checkpoint fields hold them by their flat names).
    context : int
        Slices of 2.5D input (odd): the slice and ``context//2`` neighbours on each side.
    strategy : {"X:1", "1:X"}
        X:1 = input is the mean of K-1 splits, target the remaining one.
    patch_size : int
        Side of the random training patches (the slice if smaller).
    batch_size : int
        Patches per optimiser step.
    patches_per_epoch : int
        Patches per epoch (one epoch = patches_per_epoch / batch_size steps).
    lr : float
        Adam learning rate.
    loss : {"mse", "l1"}
    epochs : int
        Maximum number of epochs.
    max_minutes : float or None
        Wall-clock limit of training.
    patience : int or None
        Early stopping after this many epochs without validation improvement.
    val_fraction : float
        Fraction of slices held out for validation, taken from one end of z.
    val_end : {"top", "bottom"}
        Which end of z the validation slab comes from.
    seed : int
    device : {"auto", "cpu", "cuda"}
    threads : int or None
        torch threads on the worker (None: the worker's cores).
    resume : bool
    max_train_slices : int or None
        Train on at most this many slices (the ones next to the validation slab; None: all),
        which bounds the memory of the training task for large volumes.
    val_gap : int or None
        Few-slice scans: pixels between training and held-out validation columns.
        Used when there are too few slices for a validation slab: the validation columns
        are ``val_fraction`` of the width (at least 16) at the ``val_end`` side (bottom =
        right). None: the network's receptive radius (its footprint).
    precision : {"auto", "fp32", "bf16"}
        Forward-pass precision on CUDA. auto: bf16 autocast if a 20-step fp32/bf16 comparison
        keeps the loss within 2%, else fp32 (always fp32 on CPU).
    data_parallel : int
        Data-parallel training processes on the node, one per GPU (0: every GPU the worker
        sees). With device cpu, gloo CPU processes (for testing). batch_size and
        patches_per_epoch must be multiples of it.
    lr_schedule : {"constant", "cosine", "onecycle"}
        Learning-rate schedule over the planned steps (``epochs``); constant by default.
        Constant after the warm-up (it beat cosine by 1.8 dB in the under-trained regime of a CPU
        budget, ``benchmarks/n2i_ablation.py``), cosine decay to 1% of ``lr``, or onecycle.
    warmup : float
        Fraction of the planned steps with a linear learning-rate warm-up (0: none).
    budget_minutes : float or None
        Training budget in minutes (None: train with the settings as given).
        A short throughput probe on this hardware picks the network, patch,
        batch and a fixed step count (``epochs``) that fit the budget, so results do not
        depend on the load of the machine (``max_minutes`` stays a safety stop). None: use
        the settings as given.
    """

    network: str = "msd"
    components: dict[str, Any] = field(default_factory=dict)
    context: int = 5
    strategy: Literal["X:1", "1:X"] = "X:1"
    patch_size: int = 256
    batch_size: int = 4
    patches_per_epoch: int = 64
    lr: float = 1e-3
    loss: Literal["mse", "l1"] = "mse"
    epochs: int = field(default=100, metadata=NOT_IN_CHECKPOINT)
    max_minutes: float | None = field(default=None, metadata=NOT_IN_CHECKPOINT)
    patience: int | None = field(default=10, metadata=NOT_IN_CHECKPOINT)
    val_fraction: float = 0.1
    val_end: Literal["top", "bottom"] = "bottom"
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = field(default="auto", metadata=NOT_IN_RESULT)
    threads: int | None = field(default=None, metadata=NOT_IN_RESULT)
    resume: bool = field(default=False, metadata=NOT_IN_RESULT)
    max_train_slices: int | None = None
    val_gap: int | None = field(default=None, metadata=NOT_IN_CHECKPOINT)
    precision: Literal["auto", "fp32", "bf16"] = field(default="auto", metadata=NOT_IN_CHECKPOINT)
    data_parallel: int = field(default=1, metadata=NOT_IN_CHECKPOINT)
    lr_schedule: Literal["constant", "cosine", "onecycle"] = "constant"
    warmup: float = 0.0
    budget_minutes: float | None = field(default=None, metadata=NOT_IN_CHECKPOINT)


@with_components("tomochunk.filters.registry:FILTERS", {
    "radius": (("median", "radius"),), "footprint": (("median", "footprint"),),
    "nlm_patch_size": (("nlm", "patch_size"), ("iternlm", "patch_size")),
    "nlm_patch_distance": (("nlm", "patch_distance"),), "nlm_h": (("nlm", "h"), ("iternlm", "h")),
    "iternlm_iterations": (("iternlm", "iterations"),),
    "iternlm_patch_distance": (("iternlm", "patch_distance"),)}, what="filter")
@dataclass(frozen=True)
class FilterConfig(ComponentSections, _Section):
    """Baseline filters on the full reconstruction.

    Attributes
    ----------
    methods : list of str
        Which baselines ``run`` computes (median, nlm, iternlm or any registered filter).
    components : mapping
        Filter parameters by filter name, written as sections of their own:
        ``median: {radius: 2, footprint: ball}``, ``nlm: {patch_size: 3, patch_distance: 5,
        h: 0.8}``, ``iternlm: {iterations: 4, ...}`` (see ``tomochunk.filters``). The old
        flat keys ``radius``, ``footprint``, ``nlm_*``, ``iternlm_*`` still work (deprecated).
        A filter's parameters change only its own stage (:data:`BY_COMPONENT`).
    chunk_z : int
    sigma : {"auto-split", "wavelet"} or float
        NLM/iterNLM noise sigma: auto-split = std(s0 - s1)/sqrt(2K), wavelet, or a number.
        ``auto-split`` measures it from the split difference (std(s0 - s1)/2 for K=2);
        ``wavelet`` is the wavelet MAD estimate per chunk/slice (biased for correlated
        tomographic noise); a number is used as is.
    """

    methods: list[str] = field(default_factory=lambda: ["median", "nlm"])
    components: dict[str, Any] = field(default_factory=dict, metadata=BY_COMPONENT)
    chunk_z: int = 16
    sigma: Literal["auto-split", "wavelet"] | float = "auto-split"


@dataclass(frozen=True)
class RunConfig(_Section):
    """The whole pipeline: one section per stage."""

    ingest: IngestConfig = field(default_factory=IngestConfig)
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    recon: ReconConfig = field(default_factory=ReconConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    denoise: DenoiseConfig = field(default_factory=DenoiseConfig)
    filters: FilterConfig = field(default_factory=FilterConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    io: IOConfig = field(default_factory=IOConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
