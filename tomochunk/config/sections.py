"""The frozen config sections of the stages but training and filters, and their base.

Every section is a frozen dataclass checked when it is constructed
(:func:`tomochunk.config.checks.check_section`, from ``__post_init__``).
:class:`IngestConfig` holds its readers' parameters and :class:`ReconConfig` its
reconstruction backends' as component sections (:mod:`tomochunk.config.components`). The
other sections with components (:class:`~tomochunk.config.run.TrainConfig`,
:class:`~tomochunk.config.run.FilterConfig`) and :class:`~tomochunk.config.run.RunConfig`,
which nests them all, are in :mod:`tomochunk.config.run`. Import them all from
:mod:`tomochunk.config`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .checks import check_section
from .components import ComponentSections, with_components
from .hashing import BY_COMPONENT, NOT_IN_RESULT

__all__ = [
    "IngestConfig",
    "PreprocessConfig",
    "ReconConfig",
    "DenoiseConfig",
    "ExportConfig",
    "ReportConfig",
    "ClusterConfig",
    "IOConfig",
]


@dataclass(frozen=True)
class _Section:
    """Base of every config section: frozen, and checked when constructed.

    ``__post_init__`` runs the section's checks from the one table of
    :mod:`tomochunk.config.checks`, so every config object that exists holds valid values.
    """

    def __post_init__(self) -> None:
        check_section(self)


@with_components("tomochunk.io.readers:READERS", {}, what="ingest")
@dataclass(frozen=True)
class IngestConfig(ComponentSections, _Section):
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
        a glob pattern. Default: TIFFs whose names match ``tiff.flat_pattern`` /
        ``tiff.dark_pattern`` (``flat|white|bright``, ``dark``) beside the projections or in
        their parent folder.
    read_block_mb : float
        Memory budget (MiB) of one block of detector rows read and written at a time; it
        bounds the memory of ingest whatever the size of the scan.
    assume_transmission : bool
        Projections without flats or darks are transmission (flat-field corrected) whatever
        their range: ingest them even when they look like raw counts (99th percentile of
        the middle detector row above 2), which is refused otherwise.
    components : mapping
        Reader parameters by format name, written as sections of their own:
        ``dxchange: {data: /exchange/data, ...}`` (dataset paths), ``nexus: {entry: null,
        ...}``, ``tiff: {flat_pattern: flat|white|bright, dark_pattern: dark}`` (see
        ``tomochunk.io``; a third-party reader gets its section with no edit). A changed
        parameter changes the ingest stage's hash.
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
    components: dict[str, Any] = field(default_factory=dict)


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


@with_components("tomochunk.recon.registry:RECONSTRUCTORS", {}, what="recon")
@dataclass(frozen=True)
class ReconConfig(ComponentSections, _Section):
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
    components : mapping
        Backend parameters by backend name, written as sections of their own:
        ``native: {eps: 2.0e-05, upsampfac: 1.25}``, ``cufinufft: {eps: 2.0e-05,
        upsampfac: null}`` (see ``tomochunk.recon``; astra, tomopy and auto have none, auto
        uses cufinufft's on a GPU and native's elsewhere). Only the selected backend's
        parameters change the recon stage (:data:`BY_COMPONENT`).
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
    components: dict[str, Any] = field(default_factory=dict, metadata=BY_COMPONENT)
    pad: Literal["zero", "edge", "none"] = "zero"
    circle: bool = False
    tomopy_convention: bool = False
    rows_per_block: int = 8
    threads: int | None = None
    half_acquisition: bool = False


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
        Phases of the segmentation scored against the truth (Dice/IoU/porosity).
    segmentation_thresholds : list of float or None
        Grey values between adjacent phases, in the truth's units (``segmentation_phases - 1``
        of them, increasing). The truth is segmented at them, and so is each method after
        the least-squares affine fit to the truth that PSNR uses. None: multi-Otsu of the
        truth and of each method, which can misplace a rare phase (a few % of the voxels).
    """

    truth: str | None = None
    slice_z: int | None = None
    profile: list[float] | None = None
    truth_free_reference: str | None = None
    segmentation_phases: int = 3
    segmentation_thresholds: list[float] | None = None


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
