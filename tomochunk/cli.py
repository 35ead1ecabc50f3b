"""The ``tomochunk`` command line.

Each command is a thin wrapper: it builds the run configuration from ``--config``, its
options and ``--set`` (:func:`tomochunk.cli_support.command_config`, checked before any
cluster starts), connects to the cluster (``--scheduler`` / ``--scheduler-file``, default a
LocalCluster) and calls the Python API with its sections. Errors tomochunk raises on bad
input are printed as one clear line with exit status 2.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from . import config as cfgmod
from .cli_support import (
    BACKEND_CHOICE,
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_NOT_BUILT,
    FILTER_CHOICE,
    FORMAT_CHOICE,
    NETWORK_CHOICE,
    NotBuiltError,
    api,
    center_value,
    command_config,
    common,
    logged_warnings_once,
    opt,
    param_values,
    session,
    sigma_value,
    storage_option,
    writing,
)
from .cli_support import errors as _errors
from .io.lock import exclusive
from .io.paths import check_distinct
from .io.store import check_output_path
from .io.urls import is_url
from .runtime.openmp_env import passive_openmp

__all__ = ["main", "EXIT_BAD_INPUT", "EXIT_NOT_BUILT", "EXIT_INTERRUPTED", "NotBuiltError"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="tomochunk")
def main() -> None:
    """tomochunk: Noise2Inverse denoising of X-ray tomography on a Dask cluster.

    \b
    Stages: ingest -> recon -> train -> denoise / filter -> report; 'run' does all of them,
    'demo' runs them on a built-in synthetic scan. Every command takes --config FILE and
    --set SECTION.KEY=VALUE; options given on the command line override the file.
    """
    passive_openmp()  # busy machines: waiting torch threads sleep instead of spinning


@main.command()
@click.argument("input", type=click.Path(exists=False))
@click.argument("scan", type=click.Path())
@opt("--format", "fmt", key="ingest.format", type=FORMAT_CHOICE,
     help="Scan reader ('tomochunk backends' lists them).")
@opt("--angles", key="ingest.angles", type=click.Path(), show=False,
     help="Angles text file (TIFF stacks).")
@opt("--angles-unit", key="ingest.angles_unit", type=click.Choice(["auto", "deg", "rad"]))
@opt("--rows-per-chunk", key="ingest.rows_per_chunk", type=int)
@opt("--pixel-size-um", key="ingest.pixel_size_um", type=float, show=False)
@opt("--flats", key="ingest.flats", show=False,
     help="Flat fields: file, folder or glob (TIFF/.npy input).")
@opt("--darks", key="ingest.darks", show=False,
     help="Dark fields: file, folder or glob (TIFF/.npy input).")
@opt("--read-block-mb", key="ingest.read_block_mb", type=float,
     help="Memory budget of one block of detector rows read and written at a time.")
@opt("--assume-transmission", key="ingest.assume_transmission", is_flag=True,
     help="Without flats/darks, take the projections as transmission even when "
          "they look like raw counts (refused otherwise).")
@common
@storage_option
@_errors
def ingest(input: str, scan: str, overwrite: bool, **kw: Any) -> None:
    """Read a raw scan (DXchange/NeXus HDF5, TIFF stack, .npy) into SCAN.zarr."""
    fn = api("io.ingest", "ingest", "ingest")
    cfg = command_config(kw)
    so = dict(cfg.io.storage_options)
    with session(kw, cfg, cluster=False):
        check_distinct(scan, [input])
        check_output_path(scan, overwrite, so)
        with exclusive(scan, storage_options=so):
            fn(input, scan, config=cfg.ingest, overwrite=overwrite, storage_options=so)


@main.command()
@click.argument("scan", type=click.Path())
@click.argument("recon", type=click.Path())
@opt("--splits", key="recon.splits", type=int)
@opt("--center", key="preprocess.center", help="'auto' or a pixel position.")
@opt("--center-method", key="preprocess.center_method",
     type=click.Choice(["vo", "registration"]))
@opt("--filter", "filter_", key="recon.filter")
@opt("--stripe", key="preprocess.stripe", type=click.Choice(["sorting", "fw", "none"]),
     help="Ring removal (Vo 2018 sorting, Muench 2009 wavelet).")
@opt("--backend", key="recon.backend", type=BACKEND_CHOICE,
     help="Reconstructor ('tomochunk backends' says which are available here).")
@opt("--pad", key="recon.pad", type=click.Choice(["zero", "edge", "none"]),
     help="Detector padding; 'edge' for ROI/local tomography.")
@opt("--circle/--no-circle", key="recon.circle")
@opt("--tomopy-convention", key="recon.tomopy_convention", is_flag=True,
     help="Use TomoPy's centre/orientation.")
@opt("--rows-per-block", key="recon.rows_per_block", type=int)
@opt("--projection-median", key="preprocess.projection_median", type=int,
     help="Radius of a median filter on projections before reconstruction (0=off).")
@opt("--half-acquisition", key="recon.half_acquisition", is_flag=True,
     help="Offset-axis 360-degree scan: stitch opposite projections (within splits).")
@opt("--paganin", key="preprocess.paganin", is_flag=True,
     help="Paganin (TIE-Hom) phase retrieval.")
@opt("--paganin-energy-kev", key="preprocess.paganin_energy_kev", type=float,
     help="X-ray energy (keV).")
@opt("--paganin-distance-m", key="preprocess.paganin_distance_m", type=float,
     help="Propagation distance (m).")
@opt("--paganin-pixel-um", key="preprocess.paganin_pixel_um", type=float, show=False,
     help="Pixel size (um); default: the scan's pixel_size_um.")
@opt("--paganin-delta-beta", key="preprocess.paganin_delta_beta", type=float,
     help="delta/beta ratio.")
@common
@storage_option
@_errors
def recon(scan: str, recon: str, overwrite: bool, **kw: Any) -> None:
    """Split the projections into K subsets and reconstruct full + every subset."""
    fn = api("recon.volume", "reconstruct", "recon")
    kw["center"] = center_value(kw.get("center"))
    cfg = command_config(kw)
    check = api("recon.volume", "check_inputs", "recon")

    def preflight(so: dict[str, Any]) -> None:  # settings against the scan, before workers
        check(scan, cfg.preprocess, cfg.recon, so)

    with writing(kw, cfg, recon, overwrite, preflight=preflight, scan=scan) as so:
        fn(scan, recon, preprocess=cfg.preprocess, config=cfg.recon, overwrite=overwrite,
           storage_options=so)


@main.command()
@click.argument("recon", type=click.Path())
@click.argument("model", type=click.Path())
@opt("--network", key="train.network", type=NETWORK_CHOICE)
@opt("--depth", key="train.msd.depth", type=int, help="MSDNet depth (train.msd.depth).")
@opt("--width", key="train.msd.width", type=int, help="MSDNet width (train.msd.width).")
@opt("--context", key="train.context", type=int)
@opt("--epochs", key="train.epochs", type=int)
@opt("--max-minutes", key="train.max_minutes", type=float, show=False)
@opt("--patience", key="train.patience", type=int)
@opt("--patch-size", key="train.patch_size", type=int)
@opt("--batch-size", key="train.batch_size", type=int)
@opt("--lr", key="train.lr", type=float)
@opt("--loss", key="train.loss", type=click.Choice(["mse", "l1"]))
@opt("--strategy", key="train.strategy", type=click.Choice(["X:1", "1:X"]))
@opt("--seed", key="train.seed", type=int)
@opt("--device", key="train.device", type=click.Choice(["auto", "cpu", "cuda"]))
@opt("--resume", key="train.resume", is_flag=True, help="Continue from the last checkpoint.")
@opt("--val-gap", key="train.val_gap", type=int, show=False,
     help="Few-slice scans: pixels between training and validation columns "
          "(default: the network's footprint).")
@opt("--precision", key="train.precision", type=click.Choice(["auto", "fp32", "bf16"]),
     help="CUDA forward precision (auto: bf16 if it keeps the loss).")
@opt("--data-parallel", key="train.data_parallel", type=int,
     help="Data-parallel processes, one per GPU of the worker (0: all GPUs).")
@opt("--budget", "budget_minutes", key="train.budget_minutes", type=float, show=False,
     help="Training budget in minutes: picks network, patch, batch and a step count "
          "from a throughput probe (overrides those options).")
@opt("--lr-schedule", key="train.lr_schedule",
     type=click.Choice(["constant", "cosine", "onecycle"]))
@opt("--warmup", key="train.warmup", type=float,
     help="Fraction of the steps with a linear learning-rate warm-up.")
@common
@storage_option
@_errors
def train(recon: str, model: str, overwrite: bool, **kw: Any) -> None:
    """Train a Noise2Inverse model on the split volumes of RECON.zarr."""
    fn = api("training.n2i", "train", "train")
    cfg = command_config(kw)
    # (a local model folder may be --resume'd: train checks it itself)
    with writing(kw, cfg, model, overwrite, check_output=is_url(model), recon=recon) as so:
        fn(recon, model, config=cfg.train, overwrite=overwrite, storage_options=so)


@main.command()
@click.argument("recon", type=click.Path())
@click.argument("model", type=click.Path())
@click.argument("denoised", type=click.Path())
@opt("--chunk-z", key="denoise.chunk_z", type=int)
@opt("--tile", key="denoise.tile", type=int, show=False,
     help="In-plane tile size for huge slices.")
@opt("--tile-halo", key="denoise.tile_halo", type=int, show=False,
     help="In-plane halo (default: receptive radius, exact).")
@opt("--strict", key="denoise.strict", is_flag=True,
     help="Error when the model does not match the scan.")
@opt("--device", key="denoise.device", type=click.Choice(["auto", "cpu", "cuda"]))
@opt("--ensemble", key="denoise.ensemble", type=click.Choice(["1", "2", "4", "8"]),
     help="D4 self-ensemble size (flips/rotations averaged; 1=off).")
@common
@storage_option
@_errors
def denoise(recon: str, model: str, denoised: str, overwrite: bool, **kw: Any) -> None:
    """Apply a trained model to RECON.zarr (chunked, halo-overlapped) -> DENOISED.zarr."""
    fn = api("infer", "denoise", "denoise")
    if kw.get("ensemble") is not None:
        kw["ensemble"] = int(kw["ensemble"])
    cfg = command_config(kw)
    with writing(kw, cfg, denoised, overwrite, recon=recon, model=model) as so:
        fn(recon, model, denoised, config=cfg.denoise, overwrite=overwrite, storage_options=so)


@main.command("filter")
@click.argument("recon", type=click.Path())
@click.argument("out", type=click.Path())
@click.option("--method", type=FILTER_CHOICE, required=True,
              help="Registered filter ('tomochunk backends' lists them).")
@opt("--radius", key="filters.median.radius", type=int, help="median.radius")
@opt("--footprint", key="filters.median.footprint", type=click.Choice(["ball", "cube"]),
     help="median.footprint")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A parameter of the chosen filter (repeatable, the value read as YAML), "
                   "e.g. --param h=0.6 for nlm; 'tomochunk config --example' lists them.")
@opt("--chunk-z", key="filters.chunk_z", type=int)
@opt("--sigma", key="filters.sigma",
     help="NLM noise level: auto-split (std(s0-s1)/2), wavelet, or a number.")
@common
@storage_option
@_errors
def filter_cmd(recon: str, out: str, method: str, params: tuple[str, ...], overwrite: bool,
               **kw: Any) -> None:
    """Baseline filter (median / nlm / iternlm / any registered) of the full reconstruction
    -> OUT.zarr."""
    fn = api("filters", "apply_filter", "filter")
    kw["sigma"] = sigma_value(kw.get("sigma"))
    own = {f"filters.{method}.{k}": v for k, v in param_values(params).items()}
    cfg = command_config(kw, {"filters.methods": [method], **own})
    with writing(kw, cfg, out, overwrite, recon=recon) as so:
        fn(recon, out, method=method, config=cfg.filters, overwrite=overwrite,
           storage_options=so)


@main.command()
@click.argument("run_dir", type=click.Path())
@opt("--truth", key="report.truth", type=click.Path(), show=False,
     help="Ground truth (.npy) for PSNR/SSIM.")
@click.option("--out", default=None, type=click.Path(), help="Report folder (RUN_DIR/report).")
@opt("--truth-free-reference", key="report.truth_free_reference", type=click.Path(),
     show=False, help="Recon store of 2 held-out halves (angles no method used): truth-free MSE.")
@common
@storage_option
@_errors
def report(run_dir: str, out: str | None, overwrite: bool, **kw: Any) -> None:
    """Metrics and a static HTML comparison report of a run directory."""
    fn = api("report", "make_report", "report")
    cfg = command_config(kw)
    with session(kw, cfg, cluster=False):
        path = fn(run_dir, out=out, config=cfg.report, overwrite=overwrite,
                  storage_options=dict(cfg.io.storage_options))
        click.echo(f"report written to {path}")


@main.command()
@click.argument("input", type=click.Path())
@click.option("--out", "out", required=True, type=click.Path(), help="Run directory.")
@opt("--epochs", key="train.epochs", type=int, help="Override train.epochs.")
@opt("--depth", key="train.msd.depth", type=int, help="Override train.msd.depth.")
@opt("--center", key="preprocess.center", help="Override preprocess.center.")
@opt("--budget", key="train.budget_minutes", type=float, show=False,
     help="Override train.budget_minutes (default: fitted to the data and hardware).")
@opt("--splits", key="recon.splits", type=int, help="Override recon.splits.")
@opt("--network", key="train.network", type=NETWORK_CHOICE, help="Override train.network.")
@opt("--context", key="train.context", type=int, help="Override train.context.")
@opt("--max-minutes", key="train.max_minutes", type=float, show=False,
     help="Override train.max_minutes.")
@opt("--chunk-z", key=("denoise.chunk_z", "filters.chunk_z"), type=int,
     help="Override denoise.chunk_z and filters.chunk_z.")
@opt("--radius", key="filters.median.radius", type=int,
     help="Override filters.median.radius.")
@common
@storage_option
@_errors
def run(input: str, out: str, overwrite: bool, **kw: Any) -> None:
    """Whole pipeline: ingest -> recon -> train -> denoise -> filters -> report."""
    fn = api("pipeline", "run", "run")
    kw["center"] = center_value(kw.get("center"))
    cfg = command_config(kw)
    with logged_warnings_once():
        fn(input, out, config=cfg, overwrite=overwrite, quiet=kw.pop("quiet"),
           verbose=kw.pop("verbose"))


@main.command()
@click.option("--out", "out", default="tomochunk-demo", show_default=True, type=click.Path())
@common
@storage_option
@_errors
def demo(out: str, overwrite: bool, **kw: Any) -> None:
    """Whole pipeline on a built-in synthetic scan (a few minutes on a laptop)."""
    fn = api("pipeline", "demo", "demo")
    cfg = command_config(kw, base=api("pipeline", "demo_config", "demo")())
    fn(out, overwrite=overwrite, quiet=kw.pop("quiet"), verbose=kw.pop("verbose"), config=cfg)


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
    """List the components (scan readers, reconstructors, networks, filters), whether each
    is available here, what it needs and its parameters with their defaults."""
    from .filters.registry import FILTERS
    from .io.readers import READERS
    from .nn.registry import NETWORKS
    from .recon.registry import RECONSTRUCTORS
    from .registry import param_defaults

    for reg in (READERS, RECONSTRUCTORS, NETWORKS, FILTERS):
        click.echo(f"{reg.kind}: {reg.describe()}")
        for name, ok in reg.available().items():
            need = "" if ok else f" [needs {reg.requires(name) or 'an extra'}]"
            click.echo(f"  {name:<10} {'yes' if ok else 'no '}  {reg.description(name)}{need}")
            comp = reg.get_entry(name).obj  # a Component, or a reader class (its own component)
            if callable(getattr(comp, "param_names", None)) and comp.param_names():
                click.echo(f"  {'':<10}      parameters: {param_defaults(comp)}")


@main.command("export")
@click.argument("store", type=click.Path())
@click.option("--out", "out", default=None, type=click.Path(),
              help="Output file (hdf5, nxtomo) or folder (tiff, raw), a path or a URL (s3://...); "
                   "default next to STORE.")
@opt("--format", "fmt", key="export.format", type=click.Choice(["tiff", "hdf5", "nxtomo", "raw"]))
@opt("--dtype", key="export.dtype", type=click.Choice(["float32", "uint16"]))
@opt("--range", "value_range", key="export.range",
     help="uint16 mapping: 'auto' (min,max) or 'lo,hi'.")
@opt("--variable", key="export.variable", show=False,
     help="Variable to export (default: the volume).")
@click.option("--storage-option", "storage_option", multiple=True, metavar="KEY=VALUE",
              help="fsspec option for a URL STORE or --out (s3://...), e.g. "
                   "endpoint_url=http://h:9000.")
@common
@_errors
def export_cmd(store: str, out: str | None, overwrite: bool, **kw: Any) -> None:
    """Export a store's volume to TIFF slices, HDF5, NeXus or raw+NRRD (keeps the pixel size)."""
    fn = api("export", "export", "export")
    cfg = command_config(kw)
    remote = bool(cfg.cluster.scheduler or cfg.cluster.scheduler_file)  # else local threads
    with session(kw, cfg, cluster=remote):
        path = fn(store, out, config=cfg.export, overwrite=overwrite,
                  storage_options=dict(cfg.io.storage_options))
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
    fn = api("view", "view", "view")
    cfg = command_config(kw)
    with session(kw, cfg, cluster=False):
        path = fn(run_dir, screenshot=screenshot, overwrite=overwrite,
                  storage_options=dict(cfg.io.storage_options))
        if path is not None:
            click.echo(f"screenshot written to {path}")


if __name__ == "__main__":  # pragma: no cover
    main()
