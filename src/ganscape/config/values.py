"""Turning plain data (YAML, command-line values) into configs and back, and checking them.

``from_dict`` refuses unknown keys (suggesting the closest valid ones, or naming what replaced a key
that existed once) and values of the wrong type; ``validate`` lists every value outside its choices
or range. Numbers must be finite and integers fit in 64 bits.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing
from pathlib import Path
from typing import Any, Mapping, NamedTuple

from ganscape.config.schema import Experiment, PenaltyTerm, penalty_registry
from ganscape.errors import ConfigError, close_matches

class KeyInfo(NamedTuple):
    """One config key: its type's name, its default and its one-line description."""

    key: str
    type: str
    default: Any
    help: str


def describe_keys(cfg: Any = None, prefix: str = "") -> list[KeyInfo]:
    """Every dotted key a config accepts, in schema order, with its value in ``cfg`` (default: the defaults)."""
    cfg = Experiment() if cfg is None else cfg
    rows = []
    for f, tp in fields_of(type(cfg)):
        name, value = prefix + f.name, getattr(cfg, f.name)
        if dataclasses.is_dataclass(tp):
            rows += describe_keys(value, name + ".")
        else:
            rows.append(KeyInfo(name, type_name(tp), value, f.metadata.get("help", "")))
    return rows


def all_keys() -> list[str]:
    """Every dotted key a config accepts, e.g. ``train.steps``."""
    return [row.key for row in describe_keys()]


def type_name(tp: Any) -> str:
    """``int``, ``list[str]``; items written in a short form by it (``list[name:weight]``)."""
    if typing.get_origin(tp) is list:
        return f"list[{type_name(typing.get_args(tp)[0])}]"
    return getattr(tp, "FORM", None) or tp.__name__


def written(value: Any) -> str:
    """A config value as it is written on the command line (``key=<this>`` sets it)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value or '""'
    if isinstance(value, list):
        return "[" + ", ".join(written(item) for item in value) + "]"
    if isinstance(value, PenaltyTerm):
        return f"{value.name}:{value.weight}"
    return str(value)


def fields_of(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


# Keys that existed once, and what replaced them.
REPLACED_KEYS = {
    "penalty.name": "penalty.name and penalty.weight were replaced by one list of penalties with their weights: "
                    "penalty=wgan_gp:1,l2:0.01 on the command line, penalty: {use: [wgan_gp:1, l2:0.01]} in YAML",
}
REPLACED_KEYS["penalty.weight"] = REPLACED_KEYS["penalty.name"]


def _unknown_key_message(key: str) -> str:
    if key in REPLACED_KEYS:
        return f"unknown config key {key!r}: {REPLACED_KEYS[key]}."
    section, _, leaf = key.rpartition(".")
    if section == "penalty" and leaf in penalty_registry():
        return (f"unknown config key {key!r}: list penalties with their weights, e.g. penalty={leaf}:1 on the "
                f"command line or penalty: {{use: [{leaf}:1]}} in YAML.")
    valid = all_keys()
    leaves = {k: k.rsplit(".", 1)[-1] for k in valid}
    # Whole-key matches first ("trian.steps"), then keys whose last part matches ("steps", "lr").
    guesses = close_matches(key, valid)
    similar_leaves = close_matches(key.rsplit(".", 1)[-1], set(leaves.values()))
    for leaf in similar_leaves:
        guesses += [k for k in valid if leaves[k] == leaf and k not in guesses]
    hint = f" Did you mean {', '.join(repr(g) for g in guesses[:3])}?" if guesses else ""
    return f"unknown config key {key!r}.{hint} Run 'ganscape config keys' to list every key."


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML or command-line value to the field's type, or raise a clear error."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
            return value.lower() in ("true", "yes", "on", "1")
    elif tp is int:
        number = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        elif isinstance(value, str):
            try:
                number = int(value.replace("_", ""))
            except ValueError:
                try:
                    as_float = float(value.replace("_", ""))
                except ValueError:
                    as_float = math.nan
                number = int(as_float) if as_float.is_integer() else None
        if number is not None:
            if not -2**63 <= number < 2**63:
                raise ConfigError(f"{key} must be an integer of at most 64 bits, got one of {len(str(abs(number)))} "
                                  "digits.")
            return number
    elif tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value) if abs(value) < 2**1023 else math.inf
        elif isinstance(value, str):
            try:  # PyYAML reads "1e-4" (no dot) as a string
                number = float(value)
            except ValueError:
                pass
        if number is not None:
            if not math.isfinite(number):
                raise ConfigError(f"{key} must be a finite number, got {value!r}.")
            return number
    elif tp is str:
        if isinstance(value, str):
            return value
    elif typing.get_origin(tp) is list:
        (item_type,) = typing.get_args(tp)
        if isinstance(value, str):
            items = value.split(",")
        elif isinstance(value, (list, tuple)):
            items = value
        elif value is None:
            items = []
        elif isinstance(value, Mapping) and dataclasses.is_dataclass(item_type):  # {r1: 1, l2: 0.01}
            items = [value] if "name" in value else [{k: v} for k, v in value.items()]
        else:  # a single YAML scalar such as eval.metrics=fid
            items = [value]
        items = [v.strip() if isinstance(v, str) else v for v in items]
        if dataclasses.is_dataclass(item_type):  # items with a short form, e.g. penalty terms "r1:0.5"
            items = [v for v in items if v not in ("", "none")]
            return [item_type.parse(v, f"{key}[{i}]") for i, v in enumerate(items)]
        return [coerce(v, item_type, key) for v in items if v != ""]
    else:  # pragma: no cover - a field type this module does not handle is a bug
        raise TypeError(f"unsupported config field type {tp!r} for {key}")
    type_name = getattr(tp, "__name__", str(tp))
    raise ConfigError(f"{key} must be {type_name}, got {value!r} ({type(value).__name__}).")


def from_dict(data: Mapping[str, Any], cls: type = Experiment, prefix: str = "",
              problems: list[str] | None = None) -> Any:
    """Build a dataclass config from nested plain data, refusing unknown keys and wrong types.

    Every such problem is found in one pass (a bad value leaves its field at the default meanwhile): appended
    to ``problems`` when given, else raised together as one ConfigError.
    """
    found = [] if problems is None else problems
    cfg = _build(data, cls, prefix, found)
    if problems is None and found:
        raise ConfigError(invalid_config(found))
    return cfg


def invalid_config(problems: list[str]) -> str:
    return "invalid config:\n  " + "\n  ".join(problems)


def _build(data: Any, cls: type, prefix: str, problems: list[str]) -> Any:
    if not isinstance(data, Mapping):
        problems.append(f"{prefix.rstrip('.') or 'the config'} must be a mapping, got {data!r}.")
        return cls()
    types = {f.name: tp for f, tp in fields_of(cls)}
    kwargs = {}
    for name, value in data.items():
        key = prefix + str(name)
        if name not in types:
            while isinstance(value, Mapping) and len(value) == 1:  # report "trian.steps", not "trian"
                (child, value), = value.items()
                key += f".{child}"
            problems.append(_unknown_key_message(key))
        elif dataclasses.is_dataclass(types[name]):
            kwargs[name] = _build(value, types[name], key + ".", problems)
        else:
            try:
                kwargs[name] = coerce(value, types[name], key)
            except ConfigError as err:
                problems.append(str(err))
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"steps": 5}}`` as ``{"train.steps": 5}``."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


# Keys that do not change a run's trajectory: a resumed run may change them, and ``config.yaml`` may
# differ from a checkpoint's config in them.
RESUMABLE_KEYS = ("train.steps", "train.device", "train.threads", "log.", "eval.", "metrics.", "checkpoint.")


def config_differences(a: Experiment, b: Experiment, ignore: tuple[str, ...] = ()) -> list[tuple[str, Any, Any]]:
    """(key, value in a, value in b) for every key whose values differ, except keys starting with ``ignore``
    and the run's name and place (``run.*``: a run directory may be moved)."""
    flat_a, flat_b = flatten(to_dict(a)), flatten(to_dict(b))
    ignore = (*ignore, "run.")
    return [(key, flat_a[key], flat_b[key]) for key in flat_a
            if flat_a[key] != flat_b[key] and not key.startswith(ignore)]


def validate(cfg: Any, prefix: str = "") -> list[str]:
    """Return a message for every value outside its allowed choices or range."""
    problems = []
    for f, tp in fields_of(type(cfg)):
        key, value = prefix + f.name, getattr(cfg, f.name)
        if dataclasses.is_dataclass(tp):
            problems += validate(value, key + ".")
            continue
        if typing.get_origin(tp) is list and dataclasses.is_dataclass(typing.get_args(tp)[0]):
            for i, item in enumerate(value):
                problems += validate(item, f"{key}[{i}].")
            continue
        meta = f.metadata
        items = value if isinstance(value, list) else [value]
        if "choices" in meta:
            known = meta["choices"]()
            for item in items:
                if item not in known:
                    hint = close_matches(item, known)
                    guess = f" Did you mean {hint[0]!r}?" if hint else ""
                    valid = ", ".join(sorted(k for k in known if k)) + (" (or empty)" if "" in known else "")
                    problems.append(f"{key}: unknown choice {item!r}.{guess} Valid: {valid}.")
        if "pattern" in meta and not re.fullmatch(meta["pattern"][0], value):
            problems.append(f"{key}: {value!r} is not one of {meta['pattern'][1]}.")
        if meta.get("path"):
            problems += _path_problems(key, value)
        bounds = [("min", lambda v, b: v >= b, ">="), ("max", lambda v, b: v <= b, "<="),
                  ("above", lambda v, b: v > b, ">"), ("below", lambda v, b: v < b, "<")]
        for name, ok, sign in bounds:
            for item in items:
                if name in meta and not ok(item, meta[name]):
                    problems.append(f"{key} must be {sign} {meta[name]}, got {item!r}.")
    return problems


MAX_NAME_BYTES = 255  # the longest file name most file systems take


def _path_problems(key: str, value: str) -> list[str]:
    """A path that the file system will refuse, said before any work starts."""
    if "\0" in value:
        return [f"{key} contains a NUL character."]
    long = [part for part in Path(value).parts if len(part.encode()) > MAX_NAME_BYTES]
    if long:
        return [f"{key}: {long[0][:40]!r}... is {len(long[0].encode())} bytes long; a file name may have at most "
                f"{MAX_NAME_BYTES}."]
    return []


def parse_penalties(value: Any, key: str = "penalty") -> list[PenaltyTerm]:
    """Penalty terms from any of the config's forms: ``"wgan_gp:1,l2"``, a list of items, or a mapping
    of names to weights (unknown names and malformed items raise a ConfigError naming ``key``)."""
    return coerce(value, list[PenaltyTerm], key)
