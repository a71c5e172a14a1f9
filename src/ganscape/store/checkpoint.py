"""Checkpoints: one safetensors file per step, written atomically, verified and loaded without running code.

A checkpoint holds nested state (state dicts, optimizer states, RNG states, counters). Its tensors go
into the safetensors tensor table under dotted keys; everything else goes into the file's JSON
metadata, with ``{"__tensor__": key}`` where a tensor stood. Nothing is unpickled when loading.

The metadata also holds the SHA-256 of every tensor's bytes (format 2), and loading checks each one, so
flipped bits in tensor data are found, not trained on. Files of format 1 (no checksums) still load.

Writes go to a hidden temporary file in the same folder, are flushed to disk, then renamed over the
final name, so a crash leaves either the old set of checkpoints or the new one, never a torn file;
a stale temporary file from a killed write is ignored by the loader and removed by the next save.
Checkpoints get the same permissions as the other files of a run (0666 less the umask).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ganscape.errors import CheckpointError
from ganscape.jsonio import new_file_mode

FORMAT = "ganscape-checkpoint-2"
READABLE_FORMATS = ("ganscape-checkpoint-1", FORMAT)  # format 1: no checksums
_NAME = re.compile(r"^step_(\d+)\.safetensors$")


def step_stem(step: int) -> str:
    """The stem every per-step file of a run is named with (checkpoints, pictures, results): step_XXXXXXXX."""
    return f"step_{step:08d}"


def checkpoint_name(step: int) -> str:
    return f"{step_stem(step)}.safetensors"


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
            if obj["__tensor__"] not in tensors:
                raise ValueError(f"its metadata names a tensor {obj['__tensor__']!r} that the file does not hold")
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


def tensor_digest(tensor: torch.Tensor) -> str:
    """SHA-256 of a CPU tensor's bytes (any dtype)."""
    return hashlib.sha256(tensor.contiguous().view(-1).view(torch.uint8).numpy()).hexdigest()


def save_checkpoint(path: Path, state: dict) -> Path:
    """Write ``state`` to ``path`` atomically, with a checksum of every tensor."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    skeleton = _encode(state, "state", tensors)
    checksums = {key: tensor_digest(tensor) for key, tensor in tensors.items()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        try:
            save_file(tensors, str(tmp), metadata={"format": FORMAT, "state": json.dumps(skeleton),
                                                   "sha256": json.dumps(checksums)})
        except Exception as err:  # safetensors reports I/O failures (e.g. a full disk) as its own error
            code = re.search(r"os error (\d+)|code: (\d+)", str(err))
            if isinstance(err, OSError) or code is None:
                raise
            number = int(code.group(1) or code.group(2))
            raise OSError(number, os.strerror(number), str(path)) from None
        os.chmod(tmp, new_file_mode())
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return path


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint written by ``save_checkpoint``, verifying every tensor's checksum; refuse anything
    else with its path."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist.")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            metadata = f.metadata() or {}
            if metadata.get("format") not in READABLE_FORMATS:
                raise ValueError(f"not a ganscape checkpoint (format {metadata.get('format')!r}, "
                                 f"expected {FORMAT!r})")
            tensors = {key: f.get_tensor(key) for key in f.keys()}
        if metadata["format"] != "ganscape-checkpoint-1":
            checksums = json.loads(metadata["sha256"])
            if set(checksums) != set(tensors):
                raise ValueError(f"its tensors ({len(tensors)}) are not those its checksums list ({len(checksums)})")
            bad = [key for key, tensor in tensors.items() if tensor_digest(tensor) != checksums[key]]
            if bad:
                raise ValueError(f"the data of {len(bad)} tensor(s) do not match their checksums "
                                 f"(first: {bad[0]}): the file was changed after it was written")
        return _decode(json.loads(metadata["state"]), tensors)
    except CheckpointError:
        raise
    except Exception as err:  # safetensors, JSON and OS errors all mean the same thing here
        raise CheckpointError(f"checkpoint {path} is corrupt or unreadable: {err}") from None


def read_torch_file(path: Path, holds: str) -> Any:
    """What ``torch.save`` wrote to ``path``, read with ``weights_only``: a file that would run code is refused
    with its path, not with PyTorch's advice to lift the guard. ``holds`` names the file's kind for messages
    (e.g. "a PyTorch state dict")."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" not in str(err):  # a corrupt pickle rather than a refused one
            raise CheckpointError(f"{path} cannot be read as {holds}: {err}") from None
        code = re.search(r"GLOBAL ([\w.]+)", str(err))
        raise CheckpointError(f"{path} was refused: loading it would run code"
                              + (f" (it calls {code.group(1)})" if code else "")
                              + f", and ganscape reads only tensors from {holds}; save the weights alone, e.g. "
                              "torch.save(model.state_dict(), PATH).") from None
    except Exception as err:  # a torn zip, a foreign format
        raise CheckpointError(f"{path} cannot be read as {holds}: {type(err).__name__}: {err}") from None


def read_checkpoint_config(path: Path) -> dict | None:
    """The config stored in a checkpoint's metadata (read without its tensors), or None when it has none
    (format 1) or cannot be read (a corrupt file is reported when it is loaded)."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            skeleton = json.loads((f.metadata() or {})["state"])
        config = _decode(skeleton["__dict__"]["config"], {})
    except Exception:
        return None
    return config if isinstance(config, dict) else None


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
