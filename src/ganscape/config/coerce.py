"""Converting one YAML or command-line value to a config field's type (``coerce``), or a clear error.

It knows the field types of the schema (bool, int, float, str, lists of them, lists of items with a short
form such as penalty terms, which parse themselves), and nothing of the schema itself, so the schema uses it.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any, Mapping

from ganscape.errors import ConfigError


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
