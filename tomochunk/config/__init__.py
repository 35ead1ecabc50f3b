"""Typed, explicit configuration for every stage, loadable from and savable to YAML.

Each stage has a frozen dataclass whose values are checked when it is constructed
(:mod:`tomochunk.config.checks`); :class:`RunConfig` nests them for the whole pipeline.
A field's metadata says whether it changes the stage's result (:data:`NOT_IN_RESULT`),
and stage hashes come from that alone (:func:`stage_hash`). :func:`from_dict` validates
strictly: unknown keys raise an error that lists the
valid ones, and values of the wrong type are rejected with the expected type named.
Nothing here is global: functions take a config object or keyword overrides.

The package's modules: :mod:`~tomochunk.config.sections` and :mod:`~tomochunk.config.run`
(the section classes), :mod:`~tomochunk.config.checks` (their value checks),
:mod:`~tomochunk.config.components` (component sections), :mod:`~tomochunk.config.parse`
(mappings), :mod:`~tomochunk.config.files` (YAML files), :mod:`~tomochunk.config.hashing`
(result fields, stage hashes) and :mod:`~tomochunk.config.example` (the example file).
Import every name from :mod:`tomochunk.config` itself.
"""

from __future__ import annotations

from .example import example_yaml
from .files import load_config, read_config_file, save_config
from .hashing import (
    BY_COMPONENT,
    NOT_IN_CHECKPOINT,
    NOT_IN_RESULT,
    checkpoint_fields,
    config_hash,
    result_fields,
    stage_hash,
)
from .parse import NULL, from_dict, replace, to_dict
from .run import FilterConfig, RunConfig, TrainConfig
from .sections import (
    ClusterConfig,
    DenoiseConfig,
    ExportConfig,
    IngestConfig,
    IOConfig,
    PreprocessConfig,
    ReconConfig,
    ReportConfig,
)

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
