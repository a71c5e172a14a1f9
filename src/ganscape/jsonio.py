"""JSON as ganscape writes it: strict (no NaN or Infinity tokens) and atomic; and atomic writes of any file."""

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


def new_file_mode() -> int:
    """The permissions ``open`` gives a new file: 0o666 less the process's umask."""
    # Reading the umask means setting it; 0o077 meanwhile, so that a file another thread creates in that
    # instant is at worst more private than asked, never readable or writable by others.
    umask = os.umask(0o077)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomically(path: Path, write) -> Path:
    """Have ``write(tmp)`` write a temporary file beside ``path``, then rename it to ``path``.

    A write cut short (a full disk, a crash) never leaves a partial file under the final name, so what
    checks for the file (a resumed run's catch-up) writes it again; the temporary file is removed. The
    file gets :func:`new_file_mode`, whatever mode the writer created it with (safetensors: 0600).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    except OSError as err:
        if err.errno is not None and err.filename in (None, str(tmp)):  # name the file the user knows
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json(path: Path, data) -> Path:
    """Write ``data`` as indented strict JSON to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    return write_atomically(path, lambda tmp: tmp.write_text(text))
