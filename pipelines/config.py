"""Frozen dataclasses are the config; YAML files and ``--set a.b=v`` only select and override.

``load_config(Cls, args, **flags)`` applies, in order: the dataclass defaults, ``--config FILE``
(YAML, nested like the dataclasses), every ``--set dotted.key=value`` (values parsed as YAML
scalars/lists), then the pipeline's own flags (``None`` means "not given"). Unknown keys are
a ``ValueError`` naming the key, so a typo never silently does nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML file with config overrides (nested like the config dataclasses)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one field, dotted path, e.g. --set run.shard_max_samples=16 (repeatable)",
    )


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _dataclass_type(tp: Any) -> type | None:
    """The dataclass inside ``tp`` (also ``X | None``), if any."""
    if dataclasses.is_dataclass(tp):
        return tp
    for arg in typing.get_args(tp):
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set {dotted}: {k!r} is not a section")  # noqa: TRY004 (a user's mistake)
    node[keys[-1]] = value


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Light coercion for values from YAML/--set: tuples from lists, floats from ints."""
    origin = typing.get_origin(tp)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is str and value is not None and not isinstance(value, str):
        return str(value)
    return value


def build(cls: type[T], tree: dict[str, Any], where: str = "") -> T:
    """Instantiate dataclass ``cls`` from a nested dict, recursing into dataclass fields."""
    types = _field_types(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(tree) - names)
    if unknown:
        raise ValueError(f"unknown config key {where}{unknown[0]!r}; valid keys here: {sorted(names)}")
    kwargs = {}
    for name, value in tree.items():
        sub = _dataclass_type(types[name])
        if sub is not None and isinstance(value, dict):
            kwargs[name] = build(sub, value, where=f"{where}{name}.")
        else:
            kwargs[name] = _coerce(types[name], value, f"{where}{name}")
    return cls(**kwargs)


def to_tree(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def load_config(cls: type[T], args: argparse.Namespace | None = None, **flags: Any) -> T:
    """Defaults <- YAML file <- --set overrides <- explicit flags (dotted via ``__``)."""
    tree: dict[str, Any] = to_tree(cls())
    if args is not None and getattr(args, "config", None):
        path = Path(args.config)
        if not path.is_file():
            raise ValueError(f"--config {path}: no such file")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"--config {path}: expected a mapping at the top level")
        tree = _merge(tree, loaded)
    for item in getattr(args, "overrides", None) or []:
        if "=" not in item:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        key, raw = item.split("=", 1)
        _set_path(tree, key.strip(), yaml.safe_load(raw) if raw else "")
    for key, value in flags.items():
        if value is not None:
            _set_path(tree, key.replace("__", "."), value)
    return build(cls, tree)
