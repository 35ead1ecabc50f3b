"""Typed, explicit configuration for every stage, loadable from and savable to YAML.

Each stage has a frozen dataclass whose values are checked when it is constructed
(:mod:`tomochunk.config_checks`); :class:`RunConfig` nests them for the whole pipeline.
A field's metadata says whether it changes the stage's result (:data:`NOT_IN_RESULT`),
and stage hashes come from that alone (:func:`stage_hash`). :func:`from_dict` validates
strictly: unknown keys raise an error that lists the
valid ones, and values of the wrong type are rejected with the expected type named.
Nothing here is global: functions take a config object or keyword overrides.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from .config_sections import ComponentSections, nest_flat_keys, registry_of, with_components
from .errors import ConfigError, shorten

__all__ = [
    "IngestConfig",
    "PreprocessConfig",
    "ReconConfig",
    "TrainConfig",
    "DenoiseConfig",
    "FilterConfig",
    "ReportConfig",
    "ClusterConfig",
    "IOConfig",
    "RunConfig",
    "ExportConfig",
    "from_dict",
    "to_dict",
    "load_config",
    "read_config_file",
    "save_config",
    "config_hash",
    "replace",
    "NULL",
    "NOT_IN_RESULT",
    "NOT_IN_CHECKPOINT",
    "BY_COMPONENT",
    "result_fields",
    "checkpoint_fields",
    "stage_hash",
    "example_yaml",
]

C = TypeVar("C")

#: ``field(metadata=NOT_IN_RESULT)``: the field does not change the stage's result (threads,
#: devices, credentials): it is left out of the stage hashes (and of checkpoint matching).
NOT_IN_RESULT: dict[str, Any] = {"result": False}
#: ``field(metadata=NOT_IN_CHECKPOINT)``: the field changes the stage's result, but an
#: interrupted training that differs only in it may be continued (epochs, time limits).
NOT_IN_CHECKPOINT: dict[str, Any] = {"checkpoint": False}
#: ``field(metadata=BY_COMPONENT)`` (``FilterConfig.components``): each component's
#: parameters change only the result of the stage that runs that component (one stage per
#: filter method), so they are left out of the section's :func:`result_fields`; the stage
#: of a method adds its own (:func:`tomochunk.pipeline.stages.filter_stage_config`).
BY_COMPONENT: dict[str, Any] = {"result": False, "by_component": True}


@dataclass(frozen=True)
class _Section:
    """Base of every config section: frozen, and checked when constructed.

    ``__post_init__`` runs the section's checks from the one table of
    :mod:`tomochunk.config_checks`, so every config object that exists holds valid values.
    """

    def __post_init__(self) -> None:
        from .config_checks import check_section

        check_section(self)


@dataclass(frozen=True)
class IngestConfig(_Section):
    """How a raw scan is read into ``scan.zarr``.

    Attributes
    ----------
    format : {"auto", "dxchange", "nexus", "tiff", "numpy"}
        Reader; ``auto`` chooses from the file extension and content.
    angles : str or None
        Text file of angles (TIFF stacks), one per line.
    angles_unit : {"auto", "deg", "rad"}
        Unit of the input angles; ``auto`` uses the file's attribute, else the range.
    rows_per_chunk : int
        Detector rows per chunk of the store (sinogram blocks read fast).
    pixel_size_um : float or None
        Pixel size in micrometres when the file does not say it.
    flats, darks : str or None
        Flat / dark fields given explicitly (TIFF stacks and .npy input): a file, a folder or
        a glob pattern. Default: TIFFs named ``flat*``/``white*`` and ``dark*`` beside the
        projections or in their parent folder.
    read_block_mb : float
        Memory budget (MiB) of one block of detector rows read and written at a time; it
        bounds the memory of ingest whatever the size of the scan.
    assume_transmission : bool
        Projections without flats or darks are transmission (flat-field corrected) whatever
        their range: ingest them even when they look like raw counts (99th percentile of
        the middle detector row above 2), which is refused otherwise.
    """

    format: Literal["auto", "dxchange", "nexus", "tiff", "numpy"] = "auto"
    angles: str | None = None
    angles_unit: Literal["auto", "deg", "rad"] = "auto"
    rows_per_chunk: int = 8
    pixel_size_um: float | None = None
    flats: str | None = None
    darks: str | None = None
    read_block_mb: float = 64.0
    assume_transmission: bool = False


@dataclass(frozen=True)
class PreprocessConfig(_Section):
    """Flat/dark normalisation, -log, projection median, stripe removal, centre finding.

    Attributes
    ----------
    flat_reduce, dark_reduce : {"mean", "median"}
        How the stacks of flats and darks are reduced to one image.
    log_floor : float
        Transmission values below this (including zero and negative ones) are clipped to it
        before ``-log``; the count of clipped values is reported.
    projection_median : int
        Radius of a 2D median on each projection before reconstruction (0 = off).
    stripe : {"sorting", "fw", "none"}
        Ring removal: sorting-based (Vo et al. 2018, the default) or Fourier-wavelet (Münch et
        al. 2009). ``fw`` with TomoPy's default level also damps every feature that is
        constant over the angles (anything centred on the rotation axis): on the synthetic
        scans it lowered the PSNR of noise-free reconstructions from ~34 dB to ~14 dB, so it
        is not the default; use it with a small ``fw_level`` (3-4).
    fw_level, fw_wname, fw_sigma, fw_pad
        Parameters of the Fourier-wavelet method (``fw_level=None``: ceil(log2(max dim))).
    sorting_size : int
        Median window of the sorting-based method.
    center : "auto" or float
        Centre of rotation in detector pixels (0-based, pixel i centred at i) or ``auto``.
    center_method : {"vo", "registration"}
        Automatic centre method: Vo's Fourier metric or 0/180 degree registration.
    center_per_slice : bool
        Find a centre for every detector row instead of one global centre.
    paganin : bool
        Paganin (TIE-Hom) phase retrieval of every projection before -log (phase contrast).
        Single-distance, homogeneous object; off by default.
    paganin_energy_kev : float
        X-ray energy in keV (sets the wavelength, 12.398 / E Angstrom).
    paganin_distance_m : float
        Sample-to-detector propagation distance in metres.
    paganin_pixel_um : float or None
        Detector pixel size in micrometres; None: the scan's ``pixel_size_um``.
    paganin_delta_beta : float
        delta/beta of the refractive index, dimensionless (larger = stronger low-pass).
    """

    flat_reduce: Literal["mean", "median"] = "mean"
    dark_reduce: Literal["mean", "median"] = "mean"
    log_floor: float = 1e-6
    projection_median: int = 0
    stripe: Literal["fw", "sorting", "none"] = "sorting"
    fw_level: int | None = None
    fw_wname: str = "db5"
    fw_sigma: float = 2.0
    fw_pad: bool = True
    sorting_size: int = 21
    center: float | Literal["auto"] = "auto"
    center_method: Literal["vo", "registration"] = "vo"
    center_per_slice: bool = False
    paganin: bool = False
    paganin_energy_kev: float = 20.0
    paganin_distance_m: float = 0.1
    paganin_pixel_um: float | None = None
    paganin_delta_beta: float = 100.0


@dataclass(frozen=True)
class ReconConfig(_Section):
    """Split and reconstruction.

    Attributes
    ----------
    splits : int
        K interleaved angle subsets (projection i goes to subset i mod K), K >= 2.
    filter : str
        shepp (default), ramlak, cosine, hann, hamming, parzen, butterworth, none.
    filter_cutoff, filter_order : float
        Cutoff (fraction of Nyquist) and Butterworth order.
    backend : str
        native (finufft gridding), cufinufft (the same on a GPU), auto (cufinufft on a
        worker with a GPU, else native), astra, tomopy.
    pad : {"zero", "edge", "none"}
        Padding of detector rows before filtering; ``edge`` for ROI / local tomography.
    circle : bool
        Zero the reconstruction outside the inscribed circle.
    tomopy_convention : bool
        Use TomoPy's geometry conventions (centre n/2, TomoPy orientation).
    rows_per_block : int
        Detector rows (slices) per Dask task.
    threads : int or None
        Threads of the reconstructor (finufft, FFTs) in each task. None: one per task on a
        distributed cluster, else the cores shared among the concurrent tasks. Results are
        bit-identical for any block size when this is fixed (float32 sums in finufft
        depend on the thread count at the 1e-5 level).
    half_acquisition : bool
        Offset-axis 360-degree scan: stitch opposite projections (within each split).
        Each projection and the one 180 degrees later form a double-width 180-degree row,
        blended linearly over the overlap; ``center: auto`` then finds the axis and overlap
        by matching opposite projections (Vo's 360-degree method). The volume is
        ``round(2 c) + 1`` pixels wide (``c``: axis distance from the far detector edge).
    """

    splits: int = 2
    filter: str = "shepp"
    filter_cutoff: float = 1.0
    filter_order: int = 8
    backend: str = "native"
    pad: Literal["zero", "edge", "none"] = "zero"
    circle: bool = False
    tomopy_convention: bool = False
    rows_per_block: int = 8
    threads: int | None = None
    half_acquisition: bool = False


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


@dataclass(frozen=True)
class DenoiseConfig(_Section):
    """Chunked inference.

    Attributes
    ----------
    chunk_z : int
        Slices per chunk (the halo of context//2 slices is added around it).
    tile : int or None
        In-plane tile size for slices too large for memory (None = whole slices).
    tile_halo : int or None
        In-plane halo; None = the network's receptive radius (exact).
    strict : bool
        Error (instead of warn) when the model metadata does not match the target scan.
    noise_tolerance : float
        Allowed relative difference of the noise level between model and target.
    device : {"auto", "cpu", "cuda"}
    batch_size : int
    ensemble : {1, 2, 4, 8}
        D4 self-ensemble size: in-plane flips/rotations averaged (8 = all; 1 = off).
        The ensemble gained 0.15-0.3 dB PSNR in ``benchmarks/n2i_ablation.py`` at 8x the
        inference cost, so it is off by default (1); use 8 when inference time is cheap.
    """

    chunk_z: int = 16
    tile: int | None = None
    tile_halo: int | None = None
    strict: bool = False
    noise_tolerance: float = 0.5
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int = 4
    ensemble: int = 1


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
class ExportConfig(_Section):
    """Export of a store's volume to files other tools read (``tomochunk export``).

    Attributes
    ----------
    format : {"tiff", "hdf5", "nxtomo", "raw"}
        ``tiff``: a folder of one ImageJ TIFF per slice; ``hdf5``: one file, dataset
        ``/volume``; ``nxtomo``: NeXus (NXtomo for a scan store, NXtomoproc for a volume);
        ``raw``: a folder with little-endian ``volume.raw`` and a NRRD ``volume.nhdr`` header.
    dtype : {"float32", "uint16"}
        ``uint16`` maps ``range`` linearly onto 0..65535 (clipped) and stores the mapping.
    range : str
        ``auto`` (the volume's min and max) or ``"lo,hi"``; used for ``uint16`` only.
    variable : str or None
        The variable to export; None = the store's volume (``full``, ``denoised``, ...).
    """

    format: Literal["tiff", "hdf5", "nxtomo", "raw"] = "tiff"
    dtype: Literal["float32", "uint16"] = "float32"
    range: str = "auto"
    variable: str | None = None


@dataclass(frozen=True)
class ReportConfig(_Section):
    """Comparison report.

    Attributes
    ----------
    truth : str or None
        Path of a ground-truth volume (.npy or zarr) for PSNR/SSIM.
    slice_z : int or None
        Slice shown in xy views (None: the middle).
    profile : list of float or None
        Line profile as [z0, y0, x0, z1, y1, x1] (None: chosen automatically).
    truth_free_reference : str or None
        Opt-in truth-free MSE: recon store of 2 halves reconstructed from held-out angles.
        Its ``split`` holds two reconstructions of projections that no method used (e.g.
        the odd angles, splits 1 and 3 of K=4, the run made from splits 0 and 2; see
        ``tomochunk.metrics.truthfree``). Each method is scored by MSE(method, reference)
        minus the reference's noise variance.
    segmentation_phases : int
        Phases of the multi-Otsu segmentation scored against the truth (Dice/IoU/porosity).
    """

    truth: str | None = None
    slice_z: int | None = None
    profile: list[float] | None = None
    truth_free_reference: str | None = None
    segmentation_phases: int = 3


@dataclass(frozen=True)
class ClusterConfig(_Section):
    """Where Dask runs.

    Attributes
    ----------
    scheduler : str or None
        Scheduler address (``tcp://host:8786`` or ``tls://...``).
    scheduler_file : str or None
        Scheduler file written by ``dask scheduler --scheduler-file``.
    n_workers, threads_per_worker : int or None
        LocalCluster size (None: sized to the machine).
    memory_limit : str or None
        LocalCluster memory limit per worker ("2GiB").
    tls_ca_file, tls_cert, tls_key : str or None
        Client TLS credentials for ``tls://`` schedulers.
    gpus : int
        Start the local cluster as one single-threaded worker per GPU, each with Dask
        resource GPU=1 (dask-cuda's LocalCUDACluster when installed): this many GPUs, -1 for
        all visible, 0 for a CPU LocalCluster.
    """

    scheduler: str | None = None
    scheduler_file: str | None = None
    n_workers: int | None = None
    threads_per_worker: int | None = None
    memory_limit: str | None = None
    tls_ca_file: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    gpus: int = 0


@dataclass(frozen=True)
class IOConfig(_Section):
    """Where inputs and outputs live: fsspec options for URL paths (s3://, gs://, ...).

    Attributes
    ----------
    storage_options : mapping
        fsspec options of every URL input and output (S3: endpoint_url, key, secret,
        anon, client_kwargs, ...; --storage-option KEY=VALUE on the command line). Not
        part of any stage hash; credentials are written to run.json and config.yaml as
        "<redacted>" (give them through the environment, e.g. AWS_ACCESS_KEY_ID).
    """

    storage_options: dict[str, Any] = field(default_factory=dict, metadata=NOT_IN_RESULT)


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


# ---------------------------------------------------------------------------------------
# validation


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin is list:
        (inner,) = get_args(tp) or (Any,)
        return f"list[{_type_name(inner)}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check ``value`` against annotation ``tp``; return it (ints accepted for floats)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Literal:
        if value in get_args(tp):
            return value
        raise ConfigError(f"{where}: {shorten(value)} is not one of {_type_name(tp)}")
    if origin in (Union, types.UnionType):
        errors = []
        for arg in get_args(tp):
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {shorten(value)}")
    if tp is type(None):
        if value is None:
            return None
        raise ConfigError(f"{where}: expected null, got {shorten(value)}")
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ConfigError(f"{where}: expected a mapping of names to values, got "
                              f"{shorten(value)}")
        return dict(value)
    if origin is list:
        (inner,) = get_args(tp) or (Any,)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected {_type_name(tp)}, got {shorten(value)}")
        return [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(tp, type) and is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for section {tp.__name__}")
        return from_dict(tp, value, _where=where)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true/false, got {shorten(value)}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {shorten(value)}")
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{where}: expected a number, got {shorten(value)}")
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string, got {shorten(value)}")
    return value


def from_dict(cls: type[C], data: dict[str, Any] | None, *, _where: str = "") -> C:
    """Build config ``cls`` from a mapping, strictly.

    Parameters
    ----------
    cls : dataclass type
        One of the config classes.
    data : dict or None
        Keys are field names; nested sections are mappings.

    Raises
    ------
    ConfigError
        On unknown keys (the message lists the valid keys) or values of the wrong type.
    """
    data = nest_flat_keys(cls, dict(data or {}), where=_where)
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(valid))
    if hasattr(cls, "_flat_keys"):  # the sections (and the old flat keys) for ``components``
        i = valid.index("components")
        valid[i:i + 1] = [*cls._flat_keys, *registry_of(cls).names()]  # type: ignore[attr-defined]
    prefix = f"{_where}." if _where else ""
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {', '.join(prefix + k for k in unknown)} in "
            f"{cls.__name__}; valid keys are: {', '.join(valid)}"
        )
    kwargs = {k: _coerce(v, hints[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain (YAML/JSON-serialisable) dict of a config (component sections nested)."""
    out = {}
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if f.name == "components" and isinstance(cfg, ComponentSections):
            out.update(cfg.component_sections())
        else:
            out[f.name] = to_dict(value) if is_dataclass(value) else copy.deepcopy(value)
    return out


class _Null:
    """The type of :data:`NULL`."""

    def __repr__(self) -> str:
        return "NULL"


#: ``replace(cfg, patience=NULL)`` sets a field to None (a plain None means "not given").
NULL = _Null()


def replace(cfg: C, **changes: Any) -> C:
    """Return a copy of ``cfg`` with ``changes`` applied and validated.

    This is the one way to change a config (they are frozen): the result is type-checked
    like a config file (:func:`from_dict`) and value-checked by its ``__post_init__``.
    ``None`` values in ``changes`` are ignored, so CLI flags that were not given do not
    override the config; :data:`NULL` sets a field to None.
    """
    changes = {k: (None if v is NULL else v) for k, v in changes.items() if v is not None}
    merged = {**to_dict(cfg), **changes}
    return from_dict(type(cfg), merged)


def result_fields(cfg: Any) -> dict[str, Any]:
    """The fields of a config section that change its stage's result, by name.

    A field is left out when its metadata says ``result: False`` (:data:`NOT_IN_RESULT`:
    threads, devices, credentials, resuming). Stage hashes are computed from this alone.
    """
    return _fields_where(cfg, lambda m: m.get("result", True))


def checkpoint_fields(cfg: Any) -> dict[str, Any]:
    """The fields that must match for an interrupted training to be continued.

    The :func:`result_fields` less those whose metadata says ``checkpoint: False``
    (:data:`NOT_IN_CHECKPOINT`: epochs, time limits, precision, ...).
    """
    return _fields_where(cfg, lambda m: m.get("result", True) and m.get("checkpoint", True))


def _fields_where(cfg: Any, keep: Any) -> dict[str, Any]:
    """The fields whose metadata ``keep`` accepts; component parameters by their flat names
    (:meth:`~tomochunk.config_sections.ComponentSections.component_fields`)."""
    out: dict[str, Any] = {}
    for f in fields(cfg):
        if not keep(f.metadata):
            continue
        if f.name == "components" and isinstance(cfg, ComponentSections):
            out.update(cfg.component_fields())
        else:
            out[f.name] = _plain(getattr(cfg, f.name))
    return out


def _plain(value: Any) -> Any:
    return to_dict(value) if is_dataclass(value) and not isinstance(value, type) else value


def stage_hash(*parts: Any) -> str:
    """The hash of a stage: its :func:`result_fields` and those of the stages before it.

    ``parts`` are config sections (reduced to their :func:`result_fields`), upstream hashes
    and any other JSON-able values.
    """
    return config_hash(*(result_fields(p) if is_dataclass(p) and not isinstance(p, type)
                         else p for p in parts))


def load_config(path: str | Path, cls: type[C] = RunConfig) -> C:  # type: ignore[assignment]
    """Load a YAML config file into ``cls`` (default :class:`RunConfig`)."""
    return from_dict(cls, read_config_file(path))


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping in a YAML config file, not yet checked (see :func:`load_config`)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    if not path.is_file():
        raise ConfigError(f"config file {path} is not a file; give the path of a YAML file")
    from .safe_yaml import load_yaml

    data = load_yaml(path.read_text(), str(path)) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections")
    return data


def save_config(cfg: Any, path: str | Path) -> None:
    """Write a config as YAML."""
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def config_hash(*cfgs: Any) -> str:
    """A short stable hash of one or more configs (used to detect changed stages)."""
    payload = json.dumps(
        [to_dict(c) if dataclasses.is_dataclass(c) else c for c in cfgs],
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _field_docs(cls: type) -> dict[str, str]:
    """The description of each attribute in a numpydoc ``Attributes`` section (all lines)."""
    text: dict[str, list[str]] = {}
    types_: dict[str, str] = {}
    names: list[str] = []
    in_attrs = False
    base = None
    for raw in (cls.__doc__ or "").splitlines():
        line = raw.strip()
        if line == "Attributes":
            in_attrs = True
            continue
        if not in_attrs or not line or set(line) == {"-"}:
            continue
        indent = len(raw) - len(raw.lstrip())
        base = indent if base is None else base
        if indent == base:
            head, _, typ = line.partition(" : ")
            names = [n.strip() for n in head.split(",")]
            for n in names:
                text[n], types_[n] = [], f"[{typ}]" if typ else ""
        else:  # every line of the description, so no comment stops mid-sentence
            for n in names:
                text[n].append(line)
    return {n: " ".join([*text[n], types_[n]]).strip() for n in text}


def example_yaml() -> str:
    """An example RunConfig as YAML, every key with its default and a comment."""
    lines = [
        "# tomochunk run configuration (tomochunk run INPUT --out RUN_DIR --config this.yaml)",
        "# Every key is optional; unknown keys are an error. CLI flags override these values.",
    ]
    run = RunConfig()
    for f in fields(run):
        section = getattr(run, f.name)
        sdoc = (type(section).__doc__ or "").strip().splitlines()[0]
        lines.append(f"{f.name}:  # {sdoc}")
        docs = _field_docs(type(section))
        for key, val in to_dict(section).items():
            if isinstance(section, ComponentSections) and key in section.components_names():
                comp = registry_of(type(section)).get_entry(key).obj
                lines.append(f"  {key}:  # {comp.description.rstrip('.')}.")
                pdocs = _field_docs(comp.Params)
                for pk, pv in val.items():
                    text = yaml.safe_dump({pk: pv}, default_flow_style=True).strip()[1:-1]
                    lines.append(f"    {text}" + (f"  # {pdocs[pk]}" if pk in pdocs else ""))
                continue
            value = yaml.safe_dump({key: val}, default_flow_style=True).strip()[1:-1]
            comment = docs.get(key, "")
            lines.append(f"  {value}" + (f"  # {comment}" if comment else ""))
    return "\n".join(lines) + "\n"
