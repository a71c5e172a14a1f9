"""Scoring any two sets of images under one recorded protocol: ``ganscape fid A B``.

Each side is an ``ImageSet``:

* a folder or zip of images (any layout; the images' own square size, or ``--resolution``);
* an ``.npz`` of uint8 images (key ``images``; N x H x W x C or N x C x H x W), as ``ganscape sample`` writes;
* a data set split, ``NAME:SPLIT`` or ``NAME:SPLIT:ROOT`` (e.g. ``cifar10:test``);
* a trained generator: an exported model, a run directory or a Hub repository id (its samples; loaded by
  ``ganscape.hub.open_images``, which hands the model to :func:`generated_images`).

Images go through the same Inception pass, cache and protocol as a run's evaluation: the second set
is the reference, the first is scored against it (precision is the first set's, recall the second's;
the Inception Score is the first set's). Features of files are cached under a key that names the
files; a generator's samples are never cached.
"""

from __future__ import annotations

import time
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from ganscape.config import DataConfig, MetricsConfig
from ganscape.data import DATASETS
from ganscape.data.images import InMemoryImages
from ganscape.errors import ConfigError, DataError
from ganscape.metrics.evaluate import Evaluator
from ganscape.metrics.features import to_uint8

FORMS = ("a folder or zip of images, an .npz of images, NAME:SPLIT[:ROOT] of a data set (e.g. cifar10:test), "
         "or a trained generator (an exported model, a run directory or a Hub repository id)")


@dataclass
class ImageSet:
    """Fixed images with the data config that names them (for the cache key and the protocol)."""

    data: object
    data_cfg: DataConfig
    description: str
    cached: bool  # files: their features are cached; a generator's samples are not


def npz_images(path: Path) -> InMemoryImages:
    """uint8 images from an .npz: its ``images`` array (or its only array), channels last or first."""
    try:
        with np.load(path) as archive:
            key = "images" if "images" in archive.files else (archive.files[0] if len(archive.files) == 1 else None)
            if key is None:
                raise DataError(f"{path} holds {', '.join(archive.files)}; put the images under the key 'images'.")
            array = archive[key]
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DataError(f"cannot read {path} as an .npz of images: {err}") from None
    if array.dtype != np.uint8 or array.ndim != 4 or not ({array.shape[-1], array.shape[1]} & {1, 3}):
        raise DataError(f"{path}: '{key}' is {array.dtype} {array.shape}; expected uint8 images N x H x W x C or "
                        "N x C x H x W with 1 or 3 channels.")
    images = torch.from_numpy(array)
    if images.shape[-1] in (1, 3) and images.shape[1] not in (1, 3):
        images = images.permute(0, 3, 1, 2)
    return InMemoryImages(images.contiguous(), name="npz", source=str(path))


def generated_images(model, source: str, n: int, seed: int, truncation: float | None) -> ImageSet:
    """``n`` samples of a loaded generator (anything with ``spec`` and ``sample``), named by ``source``."""
    if len(model.spec.shape) != 3:
        raise ConfigError(f"{source} generates {model.spec.shape} samples, not images.")
    images = to_uint8(model.sample(n, seed=seed, truncation=truncation))
    description = f"{n} samples of {source} (seed {seed}" + (f", truncation {truncation})" if truncation else ")")
    return ImageSet(InMemoryImages(images, name="generated", source=source),
                    DataConfig(name="generated", root=source), description, cached=False)


def open_image_set(text: str, resolution: int = 0) -> ImageSet:
    """One side of a comparison that holds files or a data set split, as written on the command line.

    A trained generator is opened where models are known (``ganscape.hub.open_images``), so that metrics
    never import the model loaders.
    """
    path = Path(text).expanduser()
    if path.is_dir() or (path.is_file() and zipfile.is_zipfile(path) and path.suffix.lower() != ".npz"):
        cfg = DataConfig(name="image_folder", root=str(path), resolution=resolution)
        return ImageSet(DATASETS["image_folder"](cfg), cfg, f"image_folder {path}", cached=True)
    if path.suffix.lower() == ".npz" and path.is_file():
        return ImageSet(npz_images(path), DataConfig(name="npz", root=str(path)), f"npz {path}", cached=True)
    name, _, rest = text.partition(":")
    if name in DATASETS and rest:
        split, _, root = rest.partition(":")
        cfg = DataConfig(name=name, split=split, root=root, resolution=resolution)
        if split not in ("train", "test"):
            raise ConfigError(f"{text!r}: the split is train or test, not {split!r}.")
        return ImageSet(DATASETS[name](cfg), cfg, f"{name} {split}" + (f" at {root}" if root else ""), cached=True)
    raise ConfigError(f"{text!r} is not a set of images I can open: no such file or folder ({path.absolute()}), "
                      f"and not a data set split or a model. Give {FORMS}.")


def compare(first: ImageSet, second: ImageSet, metrics: list[str], num_samples: int,
            settings: MetricsConfig | None = None, device="cpu", progress: bool = False) -> dict:
    """The metrics of ``first`` against ``second`` (the reference): ``{"values", "protocol"}``."""
    settings = settings or MetricsConfig()
    evaluator = Evaluator(metrics, second.data, second.data_cfg, latent_dim=1, num_samples=min(num_samples,
                          len(first.data)), num_reference=num_samples, settings=settings, device=device,
                          progress=progress, cache_reference=second.cached)
    tic = time.perf_counter()
    values = evaluator.score_images(first.data, replace(first.data_cfg, flip=False), cache=first.cached)
    protocol = evaluator.protocol() | {"first": first.description, "second": second.description,
                                       "num_samples": min(num_samples, len(first.data)),
                                       "seconds": time.perf_counter() - tic}
    protocol.pop("latent", None)
    protocol.pop("seed", None)
    return {"values": values, "protocol": protocol}
