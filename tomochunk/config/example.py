"""The example config file (``tomochunk config --example``), from the sections' docstrings.

Each key's comment is its description in the numpydoc ``Attributes`` section of its class
(a component's ``Params`` for component sections).
"""

from __future__ import annotations

from dataclasses import fields

import yaml

from .components import ComponentSections, registry_of
from .parse import to_dict
from .run import RunConfig

__all__ = ["example_yaml"]


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
