"""Checkpoints: one safetensors file per step, written atomically, loaded without running code.

A checkpoint holds nested state (state dicts, optimizer states, RNG states, counters). Its tensors go
into the safetensors tensor table under dotted keys; everything else goes into the file's JSON
metadata, with ``{"__tensor__": key}`` where a tensor stood. Nothing is unpickled when loading.

Writes go to a hidden temporary file in the same folder, are flushed to disk, then renamed over the
final name, so a crash leaves either the old set of checkpoints or the new one, never a torn file;
a stale temporary file from a killed write is ignored by the loader and removed by the next save.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ganscape.errors import CheckpointError

FORMAT = "ganscape-checkpoint-1"
_NAME = re.compile(r"^step_(\d+)\.safetensors$")


def checkpoint_name(step: int) -> str:
    return f"step_{step:08d}.safetensors"


def _encode(obj: Any, key: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        tensors[key] = obj.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {"__dict__": {k: _encode(v, f"{key}.{k}", tensors) for k, v in obj.items()}}
        # Optimizer states are keyed by integer parameter ids; JSON would turn them into strings.
        return {"__items__": [[k, _encode(v, f"{key}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, f"{key}.{i}", tensors) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {key!r} in a checkpoint")


def _decode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {k: _decode(v, tensors) for k, v in obj["__dict__"].items()}
        if "__items__" in obj:
            return {k: _decode(v, tensors) for k, v in obj["__items__"]}
        if "__tuple__" in obj:
            return tuple(_decode(v, tensors) for v in obj["__tuple__"])
    return obj


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(path: Path, state: dict) -> Path:
    """Write ``state`` to ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _encode(state, "state", tensors)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "state": json.dumps(skeleton)})
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return path


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint written by ``save_checkpoint``; refuse anything else with its path."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist.")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            tensors = {key: f.get_tensor(key) for key in f.keys()}
        if metadata.get("format") != FORMAT:
            raise ValueError(f"not a ganscape checkpoint (format {metadata.get('format')!r}, expected {FORMAT!r})")
        return _decode(json.loads(metadata["state"]), tensors)
    except CheckpointError:
        raise
    except Exception as err:  # safetensors, JSON and OS errors all mean the same thing here
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable: {err}") from None


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints in ``folder`` as (step, path), oldest first; temporary files are ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return sorted(found)


def remove_stale_temporaries(folder: Path) -> None:
    for tmp in Path(folder).glob(".step_*.tmp"):
        tmp.unlink(missing_ok=True)


def prune_checkpoints(folder: Path, keep: int, protect: frozenset[int] = frozenset()) -> None:
    """Delete all but the ``keep`` newest checkpoints and those at the steps in ``protect``."""
    for step, path in list_checkpoints(folder)[:-keep]:
        if step not in protect:
            path.unlink(missing_ok=True)
