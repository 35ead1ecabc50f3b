"""Load YAML config text safely: no tags, and no alias expansion beyond a small size.

``yaml.safe_load`` already refuses arbitrary Python tags, but a "billion laughs" nest of
aliases (``a: &a [x, x]``, ``b: &b [*a, *a]``, ...) expands into an exponentially large
object. Here the document is composed into its node graph first (aliases are shared nodes,
so composing is cheap), its expanded size is counted with memoisation, and only a document
below :data:`MAX_NODES` nodes is constructed into Python objects.
"""

from __future__ import annotations

from typing import Any

import yaml

from .errors import ConfigError

__all__ = ["MAX_NODES", "load_yaml"]

#: Largest expanded size (scalars + collections) of a config document. A full example
#: config has about 100 nodes.
MAX_NODES = 10_000


def _expanded_size(node: yaml.Node, memo: dict[int, int], limit: int) -> int:
    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = limit + 1  # a cycle counts as too large
    size = 1
    if isinstance(node, yaml.SequenceNode):
        for child in node.value:
            size += _expanded_size(child, memo, limit)
            if size > limit:
                break
    elif isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            size += _expanded_size(k, memo, limit) + _expanded_size(v, memo, limit)
            if size > limit:
                break
    memo[key] = size
    return size


def load_yaml(text: str, where: str, max_nodes: int = MAX_NODES) -> Any:
    """Parse ``text`` (from ``where``, named in errors) with the safe loader, size-checked.

    Raises
    ------
    ConfigError
        Invalid YAML, or aliases that expand beyond ``max_nodes`` nodes.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"config file {where} is not valid YAML: {first[:200]}") from exc
    if node is None:
        return None
    if _expanded_size(node, {}, max_nodes) > max_nodes:
        raise ConfigError(
            f"config file {where} expands to more than {max_nodes} values through YAML aliases "
            "(&anchor/*alias); write the values out instead of nesting aliases"
        )
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"config file {where} is not valid YAML: {first[:200]}") from exc
    finally:
        loader.dispose()
