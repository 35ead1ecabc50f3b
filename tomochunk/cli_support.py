"""What every ``tomochunk`` command shares: its configuration, session and error handling.

Configuration: each command that takes configuration accepts ``--config FILE`` and
``--set SECTION.KEY=VALUE`` (repeatable); its own options are declared with :func:`opt`, which
names the config key an option sets and shows the config's default. An option that was not
given is None and changes nothing, so the order is: defaults, the file, the options given,
then ``--set`` (:func:`command_config`). The whole configuration is checked before any
cluster starts. Errors tomochunk raises on bad input are printed as one line, exit status 2.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import click

from . import config as cfgmod
from .errors import TomochunkError
from .io.lock import exclusive
from .io.paths import check_distinct, check_exists
from .io.store import check_output_path
from .runtime.logs import session_logging
from .runtime.worker_signals import release_sigint
from .validate import check_config

__all__ = ["EXIT_BAD_INPUT", "EXIT_NOT_BUILT", "EXIT_INTERRUPTED", "NotBuiltError", "api",
           "errors", "opt", "configurable", "common", "storage_option", "command_config",
           "session", "writing", "center_value", "sigma_value", "logged_warnings_once",
           "RegistryChoice", "param_values", "FILTER_CHOICE", "NETWORK_CHOICE",
           "BACKEND_CHOICE", "FORMAT_CHOICE"]

EXIT_BAD_INPUT = 2
EXIT_NOT_BUILT = 3
EXIT_INTERRUPTED = 130

_KEYS = "__tomochunk_config_keys__"  # attribute of a command function: option -> config keys


class RegistryChoice(click.Choice):  # type: ignore[type-arg]
    """A choice among the names of a component registry, read when first needed, so that
    a newly registered (or entry-point installed) component appears with no edit here."""

    def __init__(self, registry: str, extra: tuple[str, ...] = (),
                 exclude: tuple[str, ...] = ()) -> None:
        self._registry, self._extra, self._exclude = registry, extra, exclude
        super().__init__([])

    @property  # type: ignore[override]
    def choices(self) -> tuple[str, ...]:
        module, _, attr = self._registry.partition(":")
        reg = getattr(importlib.import_module(module), attr)
        return (*self._extra, *(n for n in reg.names() if n not in self._exclude))

    @choices.setter
    def choices(self, value: Any) -> None:  # click.Choice.__init__ assigns it
        pass


FILTER_CHOICE = RegistryChoice("tomochunk.filters.registry:FILTERS")
NETWORK_CHOICE = RegistryChoice("tomochunk.nn.registry:NETWORKS")
BACKEND_CHOICE = RegistryChoice("tomochunk.recon.registry:RECONSTRUCTORS")
FORMAT_CHOICE = RegistryChoice("tomochunk.io.readers:READERS", extra=("auto",),
                               exclude=("xarray",))  # the in-memory reader takes no path


def param_values(items: tuple[str, ...]) -> dict[str, Any]:
    """``("h=0.6", ...)`` (``filter --param``) -> ``{"h": 0.6}``; values read as YAML."""
    from .safe_yaml import load_yaml

    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} must be KEY=VALUE, e.g. h=0.6",
                                     param_hint="--param")
        out[key.strip()] = load_yaml(raw, f"--param {key.strip()}")
    return out


class NotBuiltError(click.ClickException):
    """A command of the contract whose implementation is not in this version yet."""

    exit_code = EXIT_NOT_BUILT


def api(module: str, name: str, command: str) -> Callable[..., Any]:
    """``tomochunk.<module>.<name>``, or a :class:`NotBuiltError` naming the command."""
    try:
        mod = importlib.import_module(f"tomochunk.{module}")
        fn: Callable[..., Any] = getattr(mod, name)
        return fn
    except (ImportError, AttributeError) as exc:
        raise NotBuiltError(
            f"'tomochunk {command}' is not built yet in this version "
            f"(tomochunk.{module}.{name} is missing: {exc})"
        ) from exc


def _fail(exc: Exception) -> None:
    """Print ``exc`` as the one-line error (also to the log) and exit with status 2."""
    message = " ".join(str(exc).split())
    logging.getLogger("tomochunk").debug("error: %s", message)
    click.echo(f"Error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn tomochunk's errors into one line and exit status 2, Ctrl-C into status 130."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            # the `tomochunk` command holds Ctrl-C back while it imports (tomochunk_launcher):
            # one pressed meanwhile is raised here, before the command has done anything
            release_sigint()
            return fn(*args, **kwargs)
        except TomochunkError as exc:
            _fail(exc)
        except KeyboardInterrupt:
            # the process ends here: a Dask call the Ctrl-C cut short may still log its
            # cancelled task with a traceback as it is collected; keep it off the terminal
            logging.getLogger("asyncio").setLevel(logging.CRITICAL + 1)
            # (a Ctrl-C in the command's last instant can come after its output was complete:
            # that output is kept, so the message says "any")
            click.echo("Interrupted: stopped the cluster's tasks and removed any partial "
                       "output; re-run the same command to start again", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except Exception as exc:
            from .faults import explain

            known = explain(exc)
            if known is None:
                raise
            _fail(known)

    return wrapper


def _config_default(key: str) -> Any:
    """The default of ``section.key`` or of a component's ``section.component.param``."""
    section, _, name = key.partition(".")
    part = getattr(cfgmod.RunConfig(), section)
    comp, nested, param = name.partition(".")
    return getattr(part.params_of(comp), param) if nested else getattr(part, name)


def opt(*decls: str, key: str | tuple[str, ...], show: bool = True,
        **kw: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A command option that sets config ``key`` (or several keys) when it is given.

    Its default is None (not given); the help shows the config's default instead.
    """
    keys = (key,) if isinstance(key, str) else key

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        option = click.option(*decls, default=None, **kw)
        fn = option(fn)
        param = fn.__click_params__[-1]  # type: ignore[attr-defined]
        if show and not param.is_flag:
            default = _config_default(keys[0])
            param.show_default = "null" if default is None else str(default)
        if not hasattr(fn, _KEYS):
            setattr(fn, _KEYS, {})
        getattr(fn, _KEYS)[param.name] = keys
        return fn

    return deco


def configurable(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--config FILE`` and ``--set SECTION.KEY=VALUE`` (repeatable)."""
    fn = click.option("--set", "settings", multiple=True, metavar="SECTION.KEY=VALUE",
                      help="Override any config key (repeatable), e.g. --set train.patience=5; "
                           "the value is read as YAML.")(fn)
    return click.option("--config", "config_path", default=None, type=click.Path(),
                        help="YAML config (see 'tomochunk config --example'); options given "
                             "on the command line override it.")(fn)


def common(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by every command: cluster, overwrite, verbosity."""
    keyed = [
        opt("--scheduler", key="cluster.scheduler", show=False,
            help="Dask scheduler address (tcp:// or tls://)."),
        opt("--scheduler-file", key="cluster.scheduler_file", type=click.Path(dir_okay=False),
            show=False, help="Scheduler file written by 'dask scheduler --scheduler-file'."),
        opt("--tls-ca-file", key="cluster.tls_ca_file", show=False,
            help="CA certificate for a tls:// scheduler."),
        opt("--tls-cert", key="cluster.tls_cert", show=False,
            help="Client certificate for a tls:// scheduler."),
        opt("--tls-key", key="cluster.tls_key", show=False,
            help="Client key for a tls:// scheduler."),
        opt("--workers", "n_workers", key="cluster.n_workers", type=int, show=False,
            help="LocalCluster workers (default: one per core)."),
        opt("--gpus", key="cluster.gpus", type=int,
            help="Local cluster of one worker per GPU (N GPUs, -1 all; 0: CPU)."),
    ]
    plain = [
        click.option("--overwrite", is_flag=True, help="Replace existing outputs."),
        click.option("--quiet", "-q", is_flag=True, help="Only warnings and errors."),
        click.option("--verbose", "-v", is_flag=True, help="Debug logging."),
    ]
    for o in reversed(plain):
        fn = o(fn)
    for k in reversed(keyed):
        fn = k(fn)
    return configurable(fn)


def storage_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--storage-option KEY=VALUE`` (repeatable): fsspec options of URL paths (s3://...)."""
    return click.option(
        "--storage-option", "storage_option", multiple=True, metavar="KEY=VALUE",
        help="fsspec option for URL inputs/outputs (s3://...), e.g. "
             "endpoint_url=http://h:9000 (repeatable).")(fn)


def command_config(kw: dict[str, Any], extra: Mapping[str, Any] | None = None,
                   base: cfgmod.RunConfig | None = None) -> cfgmod.RunConfig:
    """The command's configuration from ``--config``, its options and ``--set``, checked.

    Pops from ``kw`` (the command's keywords) ``--config``, ``--set``, ``--storage-option``
    and every option the running command declared with :func:`opt`.

    Parameters
    ----------
    kw : dict
        The command's keyword arguments.
    extra : mapping, optional
        ``{"section.key": value}`` the command derives itself (None: not given).
    base : RunConfig, optional
        The defaults below the file (``demo``: its own).

    Raises
    ------
    ConfigError
        A bad file, key or value; a scheduler address that does not answer.
    """
    from .io.urls import parse_storage_options
    from .overrides import parse_settings, resolve_config

    command = click.get_current_context().command
    flags: dict[str, Any] = {}
    for name, keys in getattr(command.callback, _KEYS, {}).items():
        value = kw.pop(name, None)
        for k in keys:
            flags[k] = value
    flags.update(extra or {})
    so = parse_storage_options(kw.pop("storage_option", ()) or ())
    flags["io.storage_options"] = so or None
    settings = parse_settings(kw.pop("settings", ()) or ())
    path = kw.pop("config_path", None)
    cfg = resolve_config(path if path is not None else base, {**flags, **settings})
    check_config(cfg)  # every section, before any data is read or a cluster starts
    return cfg


@contextlib.contextmanager
def logged_warnings_once() -> Iterator[None]:
    """Hide the Python copy of warnings that tomochunk logs already (one line, not three)."""
    import warnings

    from .errors import LoggedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LoggedWarning)
        yield


@contextlib.contextmanager
def session(kw: dict[str, Any], cfg: cfgmod.RunConfig, cluster: bool = True) -> Iterator[None]:
    """Logging (``--quiet``/``--verbose`` popped from ``kw``) and, optionally, the cluster."""
    with session_logging(kw.pop("quiet"), kw.pop("verbose")), logged_warnings_once():
        if not cluster:
            yield
            return
        from .runtime.cluster import connect

        with connect(cfg.cluster):
            yield


@contextlib.contextmanager
def writing(kw: dict[str, Any], cfg: cfgmod.RunConfig, out: str, overwrite: bool, *,
            check_output: bool = True, preflight: Callable[[dict[str, Any]], None] | None = None,
            **inputs: str) -> Iterator[dict[str, Any]]:
    """The pre-flight of a command that writes ``out`` from ``inputs``, then its session.

    Refuses an absent input, an ``out`` that is one of the inputs and (with
    ``check_output``) an existing ``out`` without ``--overwrite``, then runs the command's
    own ``preflight(storage_options)`` (checks of the settings against the inputs'
    metadata), all before any work; then holds ``out``'s lock and the command's session
    (logging, cluster). Yields the storage options.
    """
    so = dict(cfg.io.storage_options)
    check_exists(so, **inputs)
    check_distinct(out, list(inputs.values()))
    if check_output:
        check_output_path(out, overwrite, so)
    if preflight is not None:
        preflight(so)
    with exclusive(out, storage_options=so), session(kw, cfg):
        yield so


def center_value(value: str | None) -> float | str | None:
    """``--center``: ``auto`` or a number."""
    if value is None or value == "auto":
        return value
    try:
        return float(value)
    except ValueError as exc:
        raise click.BadParameter(f"--center must be 'auto' or a number, got {value!r}") from exc


def sigma_value(text: str | None) -> Any:
    """``--sigma``: a named mode or a number (validated by the filter before any work)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        if text not in ("auto-split", "wavelet"):
            raise click.BadParameter(f"{text!r} is not auto-split, wavelet or a number",
                                     param_hint="--sigma") from None
        return text
