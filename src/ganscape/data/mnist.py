"""MNIST from its standard IDX files, and stacked MNIST (three digits as R, G, B: 1,000 modes).

An IDX file is a big-endian header (a magic number: 2051 for uint8 images of 3 dimensions,
2049 for uint8 labels of 1 dimension; then one 32-bit size per dimension) followed by the
values. The files may be gzipped (``.gz``). ``train-*`` files are the training split,
``t10k-*`` the test split. ``data.root`` (default ``data/mnist``) is the folder that holds them
(or torchvision's ``MNIST/raw`` below it).

Digits are 1x28x28 and resized (bilinear) to ``data.resolution``, by default 32, the size that
convolutional GANs use; ``data.resolution=28`` keeps them as they are. Nothing is downloaded.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from ganscape.data.images import InMemoryImages, StackedImages
from ganscape.errors import DataError

DEFAULT_ROOT = "data/mnist"
DEFAULT_RESOLUTION = 32
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049  # 0x0803 and 0x0801: uint8 values, 3 or 1 dimensions


def find_file(root: str, stem: str) -> Path:
    """``stem`` or ``stem.gz`` in the root folder or its ``MNIST/raw``; a DataError lists where it looked."""
    base = Path(root or DEFAULT_ROOT).expanduser()
    candidates = [folder / name for folder in (base, base / "MNIST" / "raw") for name in (stem, stem + ".gz")]
    for path in candidates:
        if path.is_file():
            return path
    tried = "\n  ".join(str(p.absolute()) for p in candidates)
    raise DataError(f"MNIST file {stem} not found. Looked at:\n  {tried}\n"
                    f"Put the standard IDX files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                    f"t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in one folder and point to it "
                    f"with data.root=PATH.")


MAX_IDX_BYTES = 1 << 30  # more than 1 GiB of values is no MNIST file (the training images are 47 MB)


def read_idx(path: Path, magic: int) -> np.ndarray:
    """The uint8 array of an IDX file, after checking its magic number and its length.

    The header is read first, and only as many bytes as it announces (checking that nothing follows),
    so a compressed file that expands to far more than MNIST holds is refused without inflating it.
    """
    ndim = magic & 0xFF
    header_size = 4 + 4 * ndim
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            header = f.read(header_size)
            if len(header) < header_size:
                raise DataError(f"{path} is truncated: {len(header)} bytes, less than its {header_size}-byte IDX "
                                "header.")
            found = struct.unpack(">i", header[:4])[0]
            if found != magic:
                raise DataError(f"{path} is not an MNIST {'image' if magic == IMAGES_MAGIC else 'label'} file: "
                                f"its magic number is {found}, expected {magic}.")
            shape = struct.unpack(f">{ndim}I", header[4:])
            expected = int(np.prod(shape))
            if expected == 0:
                raise DataError(f"{path} holds no {'images' if magic == IMAGES_MAGIC else 'labels'} (its header "
                                f"announces {shape}).")
            if expected > MAX_IDX_BYTES:
                raise DataError(f"{path} announces {shape} = {expected:,} values, more than any MNIST file holds; "
                                "it is corrupt.")
            raw = f.read(expected + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise DataError(f"cannot read {path}: {err}") from None
    if len(raw) != expected:
        raise DataError(f"{path} has {'only ' + str(len(raw)) if len(raw) < expected else 'more than ' + str(expected)} "
                        f"bytes of values, but its header announces {shape} = {expected}: the file is "
                        f"{'truncated' if len(raw) < expected else 'corrupt'}.")
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape)


def load_mnist(cfg) -> tuple[torch.Tensor, torch.Tensor, Path]:
    """The split's digits as uint8 (N, 1, 28, 28), labels int64 (N,), and the images file."""
    images_stem, labels_stem = FILES[cfg.split]
    images_path, labels_path = find_file(cfg.root, images_stem), find_file(cfg.root, labels_stem)
    images, labels = read_idx(images_path, IMAGES_MAGIC), read_idx(labels_path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} {len(labels)} labels.")
    if len(labels) and labels.max() > 9:
        raise DataError(f"{labels_path} holds label {labels.max()}; MNIST labels are digits 0..9.")
    return (torch.from_numpy(images.copy())[:, None], torch.from_numpy(labels.astype(np.int64)), images_path)


def mnist(cfg) -> InMemoryImages:
    """MNIST digits, 1 channel, 10 classes: train 60,000, test 10,000."""
    images, labels, path = load_mnist(cfg)
    return InMemoryImages(images, labels, name="mnist", num_classes=10,
                          resolution=cfg.resolution or DEFAULT_RESOLUTION, flip=cfg.flip, source=str(path.parent))


def stacked_mnist(cfg) -> StackedImages:
    """Three random MNIST digits of the split as R, G, B; label 100a + 10b + c (1,000 classes)."""
    images, labels, path = load_mnist(cfg)
    return StackedImages(images, labels, name="stacked_mnist", resolution=cfg.resolution or DEFAULT_RESOLUTION,
                         flip=cfg.flip, source=str(path.parent))
