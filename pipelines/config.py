"""Frozen dataclasses are the config; YAML files and ``--set a.b=v`` only select and override.

One mechanism for the corpus builders and the trainer. ``load_config(Cls, args, **flags)``
applies, in order: the dataclass defaults, ``--config FILE`` (YAML or JSON, nested like the
dataclasses), every ``--set dotted.key=value`` (values parsed as YAML scalars/lists), then the
caller's own flags (``None`` means "not given"; ``a__b`` is the dotted ``a.b``). Every value is
checked against the field's annotation, so an unknown key, a wrong type, a missing required
field, a missing file or bad YAML is a ``ConfigError`` naming the key or path: a user's mistake,
which ``exit_on_user_error`` turns into one line on stderr and exit status 2.

Why our own loader and not OmegaConf structured configs: OmegaConf builds ``DictConfig`` objects
and converts back to dataclasses only for the annotations it knows (no ``X | None`` for
non-primitive X, no fixed-length tuples such as ``tuple[int, int]``), runs ``__post_init__`` after
its own type checks with messages that do not name our ``--set`` spelling, and would be one more
pinned dependency on the Ray workers. The dataclasses stay the source of truth either way; this
file is the ~150 lines that check and build them.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """A user's mistake in flags, config files or inputs: reported as one line, exit status 2, no traceback."""


def exit_on_user_error(main: Callable[..., int], *args: Any, prog: str = "memcorpus") -> int:
    """Run ``main(*args)``; a ``ConfigError`` becomes one line on stderr and exit status 2.

    Anything else keeps its traceback: an internal error must show where it happened.
    """
    try:
        return int(main(*args) or 0)
    except ConfigError as e:
        print(f"{prog}: error: {' '.join(str(e).split())}", file=sys.stderr, flush=True)
        return 2


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML file with config overrides (nested like the config dataclasses)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override one field, dotted path, e.g. --set run.shard_max_samples=16 (repeatable)",
    )


def _dataclass_type(tp: Any) -> type | None:
    """The dataclass inside ``tp`` (also ``X | None``), if any."""
    if dataclasses.is_dataclass(tp):
        return tp
    for arg in typing.get_args(tp):
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) if not typing.get_args(tp) else str(tp).replace("typing.", "")


def check_type(tp: Any, value: Any, where: str) -> Any:
    """``value`` as field type ``tp`` wants it (tuples from lists, floats from ints), else ``ConfigError``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    bad = ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for arg in (a for a in args if a is not type(None)):
            try:
                return check_type(arg, value, where)
            except ConfigError:
                continue
        raise bad
    if origin is typing.Literal:
        if value in args:
            return value
        raise ConfigError(f"{where}: expected one of {list(args)}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise bad
    if tp is str:
        # YAML reads `--set captions.model=2024` as a number; a str field takes its text back.
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise bad
    if origin is tuple or tp is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad
        if args and args[-1] is Ellipsis:
            return tuple(check_type(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if args:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}: {value!r}")
            return tuple(check_type(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        return tuple(value)
    if origin is list or tp is list:
        if not isinstance(value, (list, tuple)):
            raise bad
        return [check_type(args[0], v, f"{where}[{i}]") for i, v in enumerate(value)] if args else list(value)
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise bad
        return {k: check_type(args[1], v, f"{where}.{k}") for k, v in value.items()} if args else dict(value)
    return value  # an annotation we do not check (a class of our own): its constructor validates


def _default_tree(cls: type) -> dict[str, Any]:
    """The defaults of ``cls`` as a nested dict; fields without a default are absent (required)."""
    tree: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            continue
        tree[f.name] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
    return tree


def build(cls: type[T], tree: dict[str, Any], where: str = "") -> T:
    """Instantiate dataclass ``cls`` from a nested dict, recursing into dataclass fields."""
    types_ = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(tree) - set(fields))
    if unknown:
        raise ConfigError(f"unknown config key '{where}{unknown[0]}'; valid keys here: {sorted(fields)}")
    required = [n for n, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [n for n in required if n not in tree]
    if missing:
        raise ConfigError(f"{where}{missing[0]} is not set: give it in --config FILE or as --set {where}{missing[0]}=...")
    kwargs = {}
    for name, value in tree.items():
        sub = _dataclass_type(types_[name])
        if sub is not None and isinstance(value, dict):
            kwargs[name] = build(sub, value, where=f"{where}{name}.")
        elif sub is not None and value is not None and not dataclasses.is_dataclass(value):
            raise ConfigError(f"{where}{name} is a section: set its keys, e.g. --set {where}{name}.KEY=VALUE")
        else:
            kwargs[name] = check_type(types_[name], value, f"{where}{name}")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as e:  # __post_init__ validation names the field: the user's value is wrong
        raise ConfigError(str(e)) from e


def to_tree(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def _set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    if not all(keys):
        raise ConfigError(f"--set {dotted}: empty key")
    node = tree
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: {k!r} is not a section")
    node[keys[-1]] = value


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_config_file(path: str | Path) -> dict[str, Any]:
    """A YAML (or JSON, which YAML reads) mapping; a missing file or bad syntax names the path and line."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"--config {p}: no such file")
    try:
        loaded = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"--config {p}: not valid YAML{at}: {getattr(e, 'problem', None) or e}") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"--config {p}: not a text file ({e.reason})") from e
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"--config {p}: expected a mapping of keys at the top level, got {type(loaded).__name__}")
    return loaded


def parse_override(item: str) -> tuple[str, Any]:
    """``a.b=value`` -> ("a.b", value parsed as YAML); ``a.b=`` is the empty string."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
    key, raw = item.split("=", 1)
    try:
        return key.strip(), yaml.safe_load(raw) if raw else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"--set {item!r}: the value is not valid YAML ({getattr(e, 'problem', None) or e})") from e


def load_config(cls: type[T], args: argparse.Namespace | None = None, **flags: Any) -> T:
    """Defaults <- YAML file <- --set overrides <- explicit flags (dotted via ``__``)."""
    return load(cls, getattr(args, "config", None), getattr(args, "overrides", None), **flags)


def load(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None, **flags: Any) -> T:
    """The same as ``load_config`` from plain values: a config file, ``KEY=VALUE`` strings, keyword flags."""
    tree = _default_tree(cls)
    if path:
        tree = _merge(tree, read_config_file(path))
    for item in overrides or []:
        _set_path(tree, *parse_override(item))
    for key, value in flags.items():
        if value is not None:
            _set_path(tree, key.replace("__", "."), value)
    return build(cls, tree)
