"""Real-data reference features, cached on disk under a key that names everything they depend on.

A reference set is ``n`` fixed images of one split of a data set: all of them when ``n`` covers the
split, otherwise the first ``n`` in a fixed pseudo-random order of their positions (SHA-256 of a salted
index, so the subset is the same on every machine and PyTorch version, and spread over all classes
even when files are stored class by class). Images are taken unflipped (``take``).

Cache key: data set name, resolved root (with the size and modification time of a root file), split,
resolution, number of images in the split, ``n``, the Inception input convention (resizer) and the
SHA-256 of the Inception weights file. The key is stored in the cache file and compared on every
load, and its hash is part of the file name, so a cache made under any other protocol is never
reused: it is simply another file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import torch

from ganscape.config import DataConfig
from ganscape.data.base import FixedImages
from ganscape.errors import CheckpointError, ConfigError
from ganscape.metrics.features import inception_features
from ganscape.metrics.inception import FIDInception, cache_root
from ganscape.store.checkpoint import load_checkpoint, save_checkpoint

FORMAT = "ganscape-reference-features-1"
SUBSET_SALT = b"ganscape-reference-0:"


def cache_dir(explicit: str = "") -> Path:
    """Folder of the reference features: ``explicit`` (``metrics.cache_dir``), else ``reference`` in the
    ganscape cache ($GANSCAPE_CACHE, else $XDG_CACHE_HOME/ganscape, else ~/.cache/ganscape)."""
    return Path(explicit).expanduser() if explicit else cache_root() / "reference"


def subset_indices(count: int, n: int) -> torch.Tensor:
    """Sorted indices of the ``n`` reference images among ``count`` (all of them when n >= count)."""
    if n >= count:
        return torch.arange(count)
    order = sorted(range(count), key=lambda i: hashlib.sha256(SUBSET_SALT + str(i).encode()).digest())
    return torch.tensor(sorted(order[:n]), dtype=torch.int64)


def reference_data_config(data: DataConfig, split: str, root: str = "") -> DataConfig:
    """The data config of the reference set: the run's data set, the given split, unflipped.

    ``root`` replaces ``data.root`` (for data sets kept as one folder or zip per split, such as
    ``class_folder``, whose ``data.split`` selects nothing).
    """
    if data.name == "class_folder" and split != data.split and not root:
        raise ConfigError(f"class_folder keeps one split per folder or zip, so the {split} reference needs its "
                          f"location: eval.ref_root=PATH (for CIFAR-10 zips, the {split} zip).")
    return replace(data, split=split, root=root or data.root, flip=False)


def _root_identity(root: str) -> dict:
    if not root:
        return {"root": ""}
    path = Path(root).expanduser().resolve()
    identity = {"root": str(path)}
    if path.is_file():
        stat = path.stat()
        identity |= {"root_size": stat.st_size, "root_mtime_ns": stat.st_mtime_ns}
    return identity


def reference_key(data_cfg: DataConfig, count: int, n: int, inception_input: str, weights_sha256: str) -> dict:
    """Everything the reference features depend on (see the module docstring)."""
    return {"format": FORMAT, "dataset": data_cfg.name, **_root_identity(data_cfg.root), "split": data_cfg.split,
            "resolution": data_cfg.resolution, "images_in_split": count, "num_images": min(n, count),
            "inception_input": inception_input, "weights_sha256": weights_sha256}


def cache_path(key: dict, folder: Path) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return folder / f"{key['dataset']}-{key['split']}-{key['num_images']}-{key['inception_input']}-{digest}.safetensors"


def reference_images(data, indices: torch.Tensor, batch_size: int):
    """The images at ``indices`` of ``data``, in batches (decoded lazily, batch by batch)."""
    for start in range(0, len(indices), batch_size):
        yield data.take(indices[start:start + batch_size])[0]


def reference_features(data, data_cfg: DataConfig, n: int, inception: FIDInception, inception_input: str,
                       weights_sha256: str, folder: Path | None, batch_size: int = 100,
                       progress: bool = False) -> tuple[torch.Tensor, dict]:
    """Features (n, 2048) of the reference images of ``data`` and their key, from the cache when it has them.

    ``folder`` None disables the cache. A cache file that cannot be read, or whose stored key differs,
    is refused with its path rather than silently recomputed over.
    """
    if not isinstance(data, FixedImages):
        raise ConfigError(f"data set {data_cfg.name} has no fixed images to serve as an FID reference.")
    key = reference_key(data_cfg, len(data), n, inception_input, weights_sha256)
    path = cache_path(key, folder) if folder is not None else None
    if path is not None and path.is_file():
        stored = load_checkpoint(path)
        if stored.get("key") != key:
            raise CheckpointError(f"reference cache {path} was made under another protocol; delete it.")
        return stored["features"], key
    indices = subset_indices(len(data), n)
    features, _ = inception_features(reference_images(data, indices, batch_size), inception, inception_input,
                                     total=len(indices), desc=f"reference {data_cfg.split}", progress=progress)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(path, {"key": key, "features": features})
    return features, key
