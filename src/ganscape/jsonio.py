"""JSON as ganscape writes it: strict (no NaN or Infinity tokens) and atomic."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np


def json_value(value):
    """A value as strict JSON allows it: numpy scalars as Python numbers, inf and nan as strings."""
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def write_json(path: Path, data) -> Path:
    """Write ``data`` as indented strict JSON to ``path`` through a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n")
    os.replace(tmp, path)
    return path
