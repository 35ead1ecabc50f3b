"""The ``tomochunk`` command line (contract in ``ARCHITECTURE.md``).

Each command is a thin wrapper: it builds the stage's config from the flags, connects to the
cluster (``--scheduler`` / ``--scheduler-file``, default a LocalCluster) and calls the Python
API. Errors tomochunk raises on bad input are printed as one clear line with exit status 2.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from . import config as cfgmod
from .errors import TomochunkError
from .io.lock import exclusive
from .io.paths import check_distinct, check_exists
from .io.store import check_output_path
from .io.urls import is_url
from .runtime.openmp_env import passive_openmp
from .validate import check_cluster, check_config

EXIT_BAD_INPUT = 2
EXIT_NOT_BUILT = 3
EXIT_INTERRUPTED = 130


class NotBuiltError(click.ClickException):
    """A command of the contract whose implementation is not in this version yet."""

    exit_code = EXIT_NOT_BUILT


def _api(module: str, name: str, command: str) -> Callable[..., Any]:
    try:
        mod = importlib.import_module(f"tomochunk.{module}")
        return getattr(mod, name)
    except (ImportError, AttributeError) as exc:
        raise NotBuiltError(
            f"'tomochunk {command}' is not built yet in this version "
            f"(tomochunk.{module}.{name} is missing: {exc})"
        ) from exc


def _setup_logging(quiet: bool, verbose: bool, log_file: Path | None = None) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose else logging.INFO)
    root = logging.getLogger("tomochunk")
    root.setLevel(logging.DEBUG if log_file else level)
    for h in list(root.handlers):
        root.removeHandler(h)
    h = logging.StreamHandler(sys.stderr)
    h.setLevel(level)
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    root.addHandler(h)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file)
        fh.setLevel(logging.DEBUG)
        fh.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        root.addHandler(fh)
    root.propagate = False


def _fail(exc: Exception) -> None:
    """Print ``exc`` as the one-line error (also to the log) and exit with status 2."""
    message = " ".join(str(exc).split())
    logging.getLogger("tomochunk").debug("error: %s", message)
    click.echo(f"Error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TomochunkError as exc:
            _fail(exc)
        except KeyboardInterrupt:
            # the process ends here: a Dask call the Ctrl-C cut short may still log its
            # cancelled task with a traceback as it is collected; keep it off the terminal
            logging.getLogger("asyncio").setLevel(logging.CRITICAL + 1)
            click.echo("Interrupted: stopped the cluster's tasks and removed the partial "
                       "output; re-run the same command to start again", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            from .faults import explain

            known = explain(exc)
            if known is None:
                raise
            _fail(known)

    return wrapper


def common(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command: cluster, overwrite, verbosity."""
    opts = [
        click.option("--scheduler", default=None, help="Dask scheduler address (tcp:// or tls://)."),
        click.option("--scheduler-file", default=None, type=click.Path(dir_okay=False),
                     help="Scheduler file written by 'dask scheduler --scheduler-file'."),
        click.option("--tls-ca-file", default=None, help="CA certificate for a tls:// scheduler."),
        click.option("--tls-cert", default=None, help="Client certificate for a tls:// scheduler."),
        click.option("--tls-key", default=None, help="Client key for a tls:// scheduler."),
        click.option("--workers", "n_workers", type=int, default=None,
                     help="LocalCluster workers (default: one per core)."),
        click.option("--gpus", type=int, default=0,
                     help="Local cluster of one worker per GPU (N GPUs, -1 all; 0: CPU)."),
        click.option("--overwrite", is_flag=True, help="Replace existing outputs."),
        click.option("--quiet", "-q", is_flag=True, help="Only warnings and errors."),
        click.option("--verbose", "-v", is_flag=True, help="Debug logging."),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def storage_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--storage-option KEY=VALUE`` (repeatable): fsspec options of URL paths (s3://...)."""
    return click.option(
        "--storage-option", "storage_option", multiple=True, metavar="KEY=VALUE",
        help="fsspec option for URL inputs/outputs (s3://...), e.g. "
             "endpoint_url=http://h:9000 (repeatable).")(fn)


def _storage(kw: dict[str, Any]) -> dict[str, Any]:
    """Pop ``--storage-option`` from the command's keywords as a storage_options dict."""
    from .io.urls import parse_storage_options

    return parse_storage_options(kw.pop("storage_option", ()))


@contextlib.contextmanager
def _writing(kw: dict[str, Any], out: str, overwrite: bool, *, check_output: bool = True,
             **inputs: str) -> Iterator[dict[str, Any]]:
    """The pre-flight of a command that writes ``out`` from ``inputs``, then its session.

    Pops ``--storage-option``; refuses an absent input, an ``out`` that is one of the inputs
    and (with ``check_output``) an existing ``out`` without ``--overwrite``, all before any
    work; then holds ``out``'s lock and the command's session (logging, cluster). Yields the
    storage options.
    """
    so = _storage(kw)
    check_exists(so, **inputs)
    check_distinct(out, list(inputs.values()))
    if check_output:
        check_output_path(out, overwrite, so)
    with exclusive(out, storage_options=so), _session(kw):
        yield so


def _cluster_cfg(kw: dict[str, Any]) -> cfgmod.ClusterConfig:
    return cfgmod.ClusterConfig(
        scheduler=kw.pop("scheduler"),
        scheduler_file=kw.pop("scheduler_file"),
        tls_ca_file=kw.pop("tls_ca_file"),
        tls_cert=kw.pop("tls_cert"),
        tls_key=kw.pop("tls_key"),
        n_workers=kw.pop("n_workers"),
        gpus=kw.pop("gpus", 0),
    )


@contextlib.contextmanager
def _session(kw: dict[str, Any], cluster: bool = True) -> Iterator[cfgmod.ClusterConfig]:
    """Set up logging and (optionally) the Dask cluster for a command."""
    _setup_logging(kw.pop("quiet"), kw.pop("verbose"))
    ccfg = _cluster_cfg(kw)
    with _logged_warnings_once():
        if not cluster:
            yield ccfg
            return
        check_cluster(ccfg)  # before a cluster starts: --workers 0, a bad or dead --scheduler
        from .runtime.cluster import connect

        with connect(ccfg):
            yield ccfg


@contextlib.contextmanager
def _logged_warnings_once() -> Iterator[None]:
    """Hide the Python copy of warnings that tomochunk logs already (one line, not three)."""
    import warnings

    from .errors import LoggedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LoggedWarning)
        yield


def _center(value: str | None) -> float | str | None:
    if value is None or value == "auto":
        return value
    try:
        return float(value)
    except ValueError as exc:
        raise click.BadParameter(f"--center must be 'auto' or a number, got {value!r}") from exc


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tomochunk")
def main() -> None:
    """tomochunk: Noise2Inverse denoising of X-ray tomography on a Dask cluster.

    \b
    Stages: ingest -> recon -> train -> denoise / filter -> report; 'run' does all of them,
    'demo' runs them on a built-in synthetic scan.
    """
    passive_openmp()  # busy machines: waiting torch threads sleep instead of spinning


@main.command()
@click.argument("input", type=click.Path(exists=False))
@click.argument("scan", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["auto", "dxchange", "nexus", "tiff", "numpy"]),
              default="auto", show_default=True)
@click.option("--angles", default=None, type=click.Path(), help="Angles text file (TIFF stacks).")
@click.option("--angles-unit", type=click.Choice(["auto", "deg", "rad"]), default="auto",
              show_default=True)
@click.option("--rows-per-chunk", type=int, default=8, show_default=True)
@click.option("--pixel-size-um", type=float, default=None)
@click.option("--flats", default=None, help="Flat fields: file, folder or glob (TIFF/.npy input).")
@click.option("--darks", default=None, help="Dark fields: file, folder or glob (TIFF/.npy input).")
@click.option("--read-block-mb", type=float, default=64.0, show_default=True,
              help="Memory budget of one block of detector rows read and written at a time.")
@click.option("--assume-transmission", is_flag=True,
              help="Without flats/darks, take the projections as transmission even when "
                   "they look like raw counts (refused otherwise).")
@common
@storage_option
@_errors
def ingest(input: str, scan: str, fmt: str, angles: str | None, angles_unit: str,
           rows_per_chunk: int, pixel_size_um: float | None, flats: str | None,
           darks: str | None, read_block_mb: float, assume_transmission: bool,
           overwrite: bool, **kw: Any) -> None:
    """Read a raw scan (DXchange/NeXus HDF5, TIFF stack, .npy) into SCAN.zarr."""
    fn = _api("io.ingest", "ingest", "ingest")
    so = _storage(kw)
    with _session(kw, cluster=False):
        cfg = cfgmod.IngestConfig(format=fmt, angles=angles, angles_unit=angles_unit,
                                  rows_per_chunk=rows_per_chunk, pixel_size_um=pixel_size_um,
                                  flats=flats, darks=darks, read_block_mb=read_block_mb,
                                  assume_transmission=assume_transmission)
        check_config(cfg)
        check_distinct(scan, [input])
        check_output_path(scan, overwrite, so)
        with exclusive(scan, storage_options=so):
            fn(input, scan, config=cfg, overwrite=overwrite, storage_options=so)


@main.command()
@click.argument("scan", type=click.Path())
@click.argument("recon", type=click.Path())
@click.option("--splits", type=int, default=2, show_default=True)
@click.option("--center", default="auto", show_default=True, help="'auto' or a pixel position.")
@click.option("--center-method", type=click.Choice(["vo", "registration"]), default="vo",
              show_default=True)
@click.option("--filter", "filter_", default="shepp", show_default=True)
@click.option("--stripe", type=click.Choice(["sorting", "fw", "none"]), default="sorting",
              show_default=True, help="Ring removal (Vo 2018 sorting, Muench 2009 wavelet).")
@click.option("--backend", default="native", show_default=True)
@click.option("--pad", type=click.Choice(["zero", "edge", "none"]), default="zero",
              show_default=True, help="Detector padding; 'edge' for ROI/local tomography.")
@click.option("--circle/--no-circle", default=False, show_default=True)
@click.option("--tomopy-convention", is_flag=True, help="Use TomoPy's centre/orientation.")
@click.option("--rows-per-block", type=int, default=8, show_default=True)
@click.option("--projection-median", type=int, default=0, show_default=True,
              help="Radius of a median filter on projections before reconstruction (0=off).")
@click.option("--half-acquisition", is_flag=True,
              help="Offset-axis 360-degree scan: stitch opposite projections (within splits).")
@click.option("--paganin", is_flag=True, help="Paganin (TIE-Hom) phase retrieval.")
@click.option("--paganin-energy-kev", type=float, default=20.0, show_default=True,
              help="X-ray energy (keV).")
@click.option("--paganin-distance-m", type=float, default=0.1, show_default=True,
              help="Propagation distance (m).")
@click.option("--paganin-pixel-um", type=float, default=None,
              help="Pixel size (um); default: the scan's pixel_size_um.")
@click.option("--paganin-delta-beta", type=float, default=100.0, show_default=True,
              help="delta/beta ratio.")
@common
@storage_option
@_errors
def recon(scan: str, recon: str, splits: int, center: str, center_method: str, filter_: str,
          stripe: str, backend: str, pad: str, circle: bool, tomopy_convention: bool,
          rows_per_block: int, projection_median: int, half_acquisition: bool, paganin: bool,
          paganin_energy_kev: float, paganin_distance_m: float,
          paganin_pixel_um: float | None, paganin_delta_beta: float, overwrite: bool,
          **kw: Any) -> None:
    """Split the projections into K subsets and reconstruct full + every subset."""
    fn = _api("recon.volume", "reconstruct", "recon")
    pre = cfgmod.PreprocessConfig(stripe=stripe, center=_center(center),
                                  center_method=center_method,
                                  projection_median=projection_median, paganin=paganin,
                                  paganin_energy_kev=paganin_energy_kev,
                                  paganin_distance_m=paganin_distance_m,
                                  paganin_pixel_um=paganin_pixel_um,
                                  paganin_delta_beta=paganin_delta_beta)
    rcfg = cfgmod.ReconConfig(splits=splits, filter=filter_, backend=backend, pad=pad,
                              circle=circle, tomopy_convention=tomopy_convention,
                              rows_per_block=rows_per_block, half_acquisition=half_acquisition)
    check_config(rcfg)
    with _writing(kw, recon, overwrite, scan=scan) as so:
        fn(scan, recon, preprocess=pre, config=rcfg, overwrite=overwrite, storage_options=so)


@main.command()
@click.argument("recon", type=click.Path())
@click.argument("model", type=click.Path())
@click.option("--network", default="msd", show_default=True)
@click.option("--depth", type=int, default=100, show_default=True)
@click.option("--width", type=int, default=1, show_default=True)
@click.option("--context", type=int, default=5, show_default=True)
@click.option("--epochs", type=int, default=100, show_default=True)
@click.option("--max-minutes", type=float, default=None)
@click.option("--patience", type=int, default=10, show_default=True)
@click.option("--patch-size", type=int, default=256, show_default=True)
@click.option("--batch-size", type=int, default=4, show_default=True)
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--loss", type=click.Choice(["mse", "l1"]), default="mse", show_default=True)
@click.option("--strategy", type=click.Choice(["X:1", "1:X"]), default="X:1", show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint.")
@click.option("--val-gap", type=int, default=None,
              help="Few-slice scans: pixels between training and validation columns "
                   "(default: the network's footprint).")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto",
              show_default=True, help="CUDA forward precision (auto: bf16 if it keeps the loss).")
@click.option("--data-parallel", type=int, default=1, show_default=True,
              help="Data-parallel processes, one per GPU of the worker (0: all GPUs).")
@click.option("--budget", "budget_minutes", type=float, default=None,
              help="Training budget in minutes: picks network, patch, batch and a step count "
                   "from a throughput probe (overrides those options).")
@click.option("--lr-schedule", type=click.Choice(["constant", "cosine", "onecycle"]),
              default="constant", show_default=True)
@click.option("--warmup", type=float, default=0.0, show_default=True,
              help="Fraction of the steps with a linear learning-rate warm-up.")
@common
@storage_option
@_errors
def train(recon: str, model: str, overwrite: bool, **kw: Any) -> None:
    """Train a Noise2Inverse model on the split volumes of RECON.zarr."""
    fn = _api("training.n2i", "train", "train")
    fields = {f: kw.pop(f) for f in list(kw) if f in cfgmod.TrainConfig.__dataclass_fields__}
    tcfg = cfgmod.from_dict(cfgmod.TrainConfig, fields)
    check_config(tcfg)
    # (a local model folder may be --resume'd: train checks it itself)
    with _writing(kw, model, overwrite, check_output=is_url(model), recon=recon) as so:
        fn(recon, model, config=tcfg, overwrite=overwrite, storage_options=so)


@main.command()
@click.argument("recon", type=click.Path())
@click.argument("model", type=click.Path())
@click.argument("denoised", type=click.Path())
@click.option("--chunk-z", type=int, default=16, show_default=True)
@click.option("--tile", type=int, default=None, help="In-plane tile size for huge slices.")
@click.option("--tile-halo", type=int, default=None,
              help="In-plane halo (default: receptive radius, exact).")
@click.option("--strict", is_flag=True, help="Error when the model does not match the scan.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--ensemble", type=click.Choice(["1", "2", "4", "8"]), default="1",
              show_default=True, help="D4 self-ensemble size (flips/rotations averaged; 1=off).")
@common
@storage_option
@_errors
def denoise(recon: str, model: str, denoised: str, chunk_z: int, tile: int | None,
            tile_halo: int | None, strict: bool, device: str, ensemble: str, overwrite: bool,
            **kw: Any) -> None:
    """Apply a trained model to RECON.zarr (chunked, halo-overlapped) -> DENOISED.zarr."""
    fn = _api("infer", "denoise", "denoise")
    dcfg = cfgmod.DenoiseConfig(chunk_z=chunk_z, tile=tile, tile_halo=tile_halo, strict=strict,
                                device=device, ensemble=int(ensemble))
    check_config(dcfg)
    with _writing(kw, denoised, overwrite, recon=recon, model=model) as so:
        fn(recon, model, denoised, config=dcfg, overwrite=overwrite, storage_options=so)


def _sigma_option(text: str) -> Any:
    """``--sigma``: a named mode or a number (validated by the filter before any work)."""
    try:
        return float(text)
    except ValueError:
        if text not in ("auto-split", "wavelet"):
            raise click.BadParameter(f"{text!r} is not auto-split, wavelet or a number",
                                     param_hint="--sigma") from None
        return text


@main.command("filter")
@click.argument("recon", type=click.Path())
@click.argument("out", type=click.Path())
@click.option("--method", type=click.Choice(["median", "nlm", "iternlm"]), required=True)
@click.option("--radius", type=int, default=2, show_default=True)
@click.option("--footprint", type=click.Choice(["ball", "cube"]), default="ball",
              show_default=True)
@click.option("--chunk-z", type=int, default=16, show_default=True)
@click.option("--sigma", default="auto-split", show_default=True,
              help="NLM noise level: auto-split (std(s0-s1)/2), wavelet, or a number.")
@common
@storage_option
@_errors
def filter_cmd(recon: str, out: str, method: str, radius: int, footprint: str, chunk_z: int,
               sigma: str, overwrite: bool, **kw: Any) -> None:
    """Baseline filter (median / nlm / iternlm) of the full reconstruction -> OUT.zarr."""
    fn = _api("filters", "apply_filter", "filter")
    fcfg = cfgmod.FilterConfig(methods=[method], radius=radius, footprint=footprint,
                               chunk_z=chunk_z, sigma=_sigma_option(sigma))
    check_config(fcfg)
    with _writing(kw, out, overwrite, recon=recon) as so:
        fn(recon, out, method=method, config=fcfg, overwrite=overwrite, storage_options=so)


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option("--truth", default=None, type=click.Path(), help="Ground truth (.npy) for PSNR/SSIM.")
@click.option("--out", default=None, type=click.Path(), help="Report folder (RUN_DIR/report).")
@click.option("--truth-free-reference", default=None, type=click.Path(),
              help="Recon store of 2 held-out halves (angles no method used): truth-free MSE.")
@common
@storage_option
@_errors
def report(run_dir: str, truth: str | None, out: str | None, truth_free_reference: str | None,
           overwrite: bool, **kw: Any) -> None:
    """Metrics and a static HTML comparison report of a run directory."""
    fn = _api("report", "make_report", "report")
    rcfg = cfgmod.ReportConfig(truth=truth, truth_free_reference=truth_free_reference)
    so = _storage(kw)
    with _session(kw, cluster=False):
        path = fn(run_dir, out=out, config=rcfg, overwrite=overwrite, storage_options=so)
        click.echo(f"report written to {path}")


@main.command()
@click.argument("input", type=click.Path())
@click.option("--out", "out", required=True, type=click.Path(), help="Run directory.")
@click.option("--config", "config_path", default=None, type=click.Path(),
              help="YAML config (see 'tomochunk config --example').")
@click.option("--epochs", type=int, default=None, help="Override train.epochs.")
@click.option("--depth", type=int, default=None, help="Override train.depth.")
@click.option("--center", default=None, help="Override preprocess.center.")
@click.option("--budget", type=float, default=None,
              help="Override train.budget_minutes (default: fitted to the data and hardware).")
@click.option("--splits", type=int, default=None, help="Override recon.splits.")
@click.option("--network", default=None, help="Override train.network.")
@click.option("--context", type=int, default=None, help="Override train.context.")
@click.option("--max-minutes", type=float, default=None, help="Override train.max_minutes.")
@click.option("--chunk-z", type=int, default=None,
              help="Override denoise.chunk_z and filters.chunk_z.")
@click.option("--radius", type=int, default=None, help="Override filters.radius.")
@click.option("--set", "settings", multiple=True, metavar="SECTION.KEY=VALUE",
              help="Override any config key (repeatable), e.g. --set train.patience=5; "
                   "the value is read as YAML.")
@common
@storage_option
@_errors
def run(input: str, out: str, config_path: str | None, epochs: int | None, depth: int | None,
        center: str | None, budget: float | None, splits: int | None, network: str | None,
        context: int | None,
        max_minutes: float | None, chunk_z: int | None, radius: int | None,
        settings: tuple[str, ...], overwrite: bool, **kw: Any) -> None:
    """Whole pipeline: ingest -> recon -> train -> denoise -> filters -> report."""
    from .overrides import parse_settings

    fn = _api("pipeline", "run", "run")
    so = _storage(kw)
    quiet, verbose = kw.pop("quiet"), kw.pop("verbose")
    ccfg = _cluster_cfg(kw)
    overrides = {"train.epochs": epochs, "train.depth": depth,
                 "preprocess.center": _center(center), "train.budget_minutes": budget,
                 "recon.splits": splits, "train.network": network, "train.context": context,
                 "train.max_minutes": max_minutes, "denoise.chunk_z": chunk_z,
                 "filters.chunk_z": chunk_z, "filters.radius": radius,
                 "io.storage_options": so or None, **parse_settings(settings)}
    with _logged_warnings_once():
        fn(input, out, config=config_path, cluster=ccfg, overwrite=overwrite, quiet=quiet,
           verbose=verbose, overrides=overrides)


@main.command()
@click.option("--out", "out", default="tomochunk-demo", show_default=True, type=click.Path())
@common
@storage_option
@_errors
def demo(out: str, overwrite: bool, **kw: Any) -> None:
    """Whole pipeline on a built-in synthetic scan (a few minutes on a laptop)."""
    fn = _api("pipeline", "demo", "demo")
    so = _storage(kw)
    quiet, verbose = kw.pop("quiet"), kw.pop("verbose")
    ccfg = _cluster_cfg(kw)
    fn(out, cluster=ccfg, overwrite=overwrite, quiet=quiet, verbose=verbose,
       storage_options=so or None)


@main.command("config")
@click.option("--example", is_flag=True, help="Print an example config with every option.")
def config_cmd(example: bool) -> None:
    """Print the pipeline configuration (YAML) with its defaults."""
    if not example:
        click.echo("use 'tomochunk config --example' to print an example config", err=True)
        sys.exit(1)
    click.echo(cfgmod.example_yaml(), nl=False)


@main.command()
def backends() -> None:
    """List reconstruction backends, networks and filters and whether they are available."""
    for module, reg in (("io.readers", "READERS"), ("recon.registry", "RECONSTRUCTORS"),
                        ("nn.registry", "NETWORKS"), ("filters", "FILTERS")):
        if module == "io.readers":
            importlib.import_module("tomochunk.io.ingest")  # registers the file readers
        try:
            r = getattr(importlib.import_module(f"tomochunk.{module}"), reg)
            click.echo(f"{r.kind}: {r.describe()}")
        except (ImportError, AttributeError):
            click.echo(f"{module}: not built yet")


@main.command("export")
@click.argument("store", type=click.Path())
@click.option("--out", "out", default=None, type=click.Path(),
              help="Output file (hdf5, nxtomo) or folder (tiff, raw), a path or a URL (s3://...); "
                   "default next to STORE.")
@click.option("--format", "fmt", type=click.Choice(["tiff", "hdf5", "nxtomo", "raw"]),
              default="tiff", show_default=True)
@click.option("--dtype", type=click.Choice(["float32", "uint16"]), default="float32",
              show_default=True)
@click.option("--range", "value_range", default="auto", show_default=True,
              help="uint16 mapping: 'auto' (min,max) or 'lo,hi'.")
@click.option("--variable", default=None, help="Variable to export (default: the volume).")
@click.option("--storage-option", "storage_option", multiple=True, metavar="KEY=VALUE",
              help="fsspec option for a URL STORE or --out (s3://...), e.g. "
                   "endpoint_url=http://h:9000.")
@common
@_errors
def export_cmd(store: str, out: str | None, fmt: str, dtype: str, value_range: str,
               variable: str | None, storage_option: tuple[str, ...], overwrite: bool,
               **kw: Any) -> None:
    """Export a store's volume to TIFF slices, HDF5, NeXus or raw+NRRD (keeps the pixel size)."""
    fn = _api("export", "export", "export")
    from .io.urls import parse_storage_options

    remote = bool(kw.get("scheduler") or kw.get("scheduler_file"))  # else local threads
    with _session(kw, cluster=remote):
        path = fn(store, out, config=cfgmod.ExportConfig(format=fmt, dtype=dtype,  # type: ignore[arg-type]
                                                          range=value_range, variable=variable),
                  overwrite=overwrite, storage_options=parse_storage_options(storage_option))
        click.echo(f"exported to {path}")


@main.command("view")
@click.argument("run_dir", type=click.Path())
@click.option("--screenshot", default=None, type=click.Path(dir_okay=False),
              help="Write a PNG of the viewer and exit (headless: run under xvfb-run).")
@common
@storage_option
@_errors
def view_cmd(run_dir: str, screenshot: str | None, overwrite: bool, **kw: Any) -> None:
    """Open a run's reconstruction, denoised volume and baselines in napari (linked layers).

    RUN_DIR may be a bucket URL (s3://bucket/run, with --storage-option)."""
    fn = _api("view", "view", "view")
    so = _storage(kw)
    with _session(kw, cluster=False):
        path = fn(run_dir, screenshot=screenshot, overwrite=overwrite, storage_options=so)
        if path is not None:
            click.echo(f"screenshot written to {path}")


if __name__ == "__main__":  # pragma: no cover
    main()
