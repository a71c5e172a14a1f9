"""What every image data set shares: batches from uint8 images, decoding, resizing and splits.

Images are stored as uint8 (one byte per value, a quarter of float32) and turned into float
batches only when sampled. ``sample(n, generator)`` draws ``n`` indices i.i.d. with
``torch.randint(len, (n,), generator=generator)``, then, with ``flip``, one mirror decision per
image from the same generator. Nothing else is random, so a run's batches are reproducible and a
resumed run sees the same batches as an uninterrupted one.

Files of any size (folders, zips, LMDB) are decoded with PIL and brought to the resolution by
``CROPS[data.crop]``: resized so that the short side is the resolution (bicubic, antialiased) and
centre-cropped to a square, or centre-cropped without rescaling. They are decoded once into
memory when the uint8 result fits under ``MEMORY_LIMIT``, and per batch (``LazyImages``)
otherwise, with a few threads since PIL releases the GIL while it decodes.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from ganscape.errors import ConfigError, DataError

MEMORY_LIMIT = 2 * 2**30  # bytes of decoded uint8 images kept in memory; beyond it, decode per batch
DECODE_THREADS = min(8, os.cpu_count() or 1)
DECODE_CHUNK = 256  # images per thread task when decoding a whole data set up front
PROGRESS_MIN = 2000  # decoding fewer images than this up front shows no progress bar
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
SPLIT_SALT = b"ganscape-split-0:"
STACK_SALT = b"ganscape-stack-0:"  # the fixed stacks of StackedImages.take  # the fixed seed of every held-out split (see held_out)

# What PIL, zipfile and zlib raise for a truncated, corrupt or unsupported image.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error, zipfile.BadZipFile,
                 Image.DecompressionBombError)


class ImageSet:
    """The data set contract's attributes, and the float conversion that all image sets share."""

    def __init__(self, name: str, shape: tuple[int, int, int], num_classes: int, flip: bool, source: str):
        self.name = name
        self.shape = tuple(int(s) for s in shape)
        self.num_classes = int(num_classes)
        self.class_names = tuple(str(i) for i in range(self.num_classes))  # builders that know names set them
        self.flip = bool(flip)
        self.source = source

    def _to_float(self, images: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """uint8 NCHW -> float32 in [-1, 1] at ``shape``, mirrored where the generator says so
        (never without a generator)."""
        x = images.to(torch.float32).div_(127.5).sub_(1.0)
        if tuple(x.shape[-2:]) != self.shape[-2:]:
            # Bilinear weights are non-negative and sum to 1, so the range holds up to rounding.
            x = F.interpolate(x, size=self.shape[-2:], mode="bilinear", antialias=True, align_corners=False)
            x = x.clamp_(-1.0, 1.0)
        if self.flip and generator is not None:
            mirror = (torch.rand(len(x), generator=generator) < 0.5).to(x.device, non_blocking=True)
            x = torch.where(mirror[:, None, None, None], x.flip(-1), x)
        return x

    def to_device(self, device: torch.device) -> None:
        """Keep the uint8 images and the labels on ``device`` (a training GPU), where batches are then indexed,
        resized, flipped and scaled. The random draws (indices, flips) stay the CPU draws they were, so the
        batches, and resuming, are the same wherever the images lie. Sets decoded per batch stay on the host."""
        if isinstance(self.images, torch.Tensor):
            self.images = self.images.to(device)
            self.labels = None if self.labels is None else self.labels.to(device)

    def _on_images(self, index: torch.Tensor) -> torch.Tensor:
        """``index`` (drawn on the CPU) where the images are."""
        return index.to(self.images.device, non_blocking=True)

    def __repr__(self) -> str:
        classes = f", classes={self.num_classes}" if self.num_classes else ""
        return (f"{type(self).__name__}({self.name!r}, {len(self):,} images, shape={self.shape}{classes}, "
                f"flip={self.flip}, from {self.source})")


class InMemoryImages(ImageSet):
    """Decoded uint8 images (N, C, H, W) held in memory, with optional int64 labels (N,).

    ``resolution`` 0 keeps the stored size; another value resizes each batch (bilinear), which
    keeps memory at the stored size whatever the resolution.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None = None, *, name: str,
                 num_classes: int = 0, resolution: int = 0, flip: bool = False, source: str = ""):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        check_labels(labels, len(images), num_classes)
        size = (resolution, resolution) if resolution else tuple(images.shape[-2:])
        super().__init__(name, (images.shape[1], *size), num_classes, flip, source)
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        index = self._on_images(torch.randint(len(self.images), (n,), generator=generator))
        x = self._to_float(self.images[index], generator)
        return x, None if self.labels is None else self.labels[index]

    def take(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The images at ``index``, never flipped: fixed sets such as FID references and test images."""
        index = self._on_images(index)
        return self._to_float(self.images[index], None), None if self.labels is None else self.labels[index]


STACK_CLASS_NAMES = tuple(f"{k:03d}" for k in range(1000))  # a stack's R, G and B digits


class StackedImages(ImageSet):
    """Three independent random one-channel images stacked as R, G and B (stacked MNIST).

    With 10 classes that gives 1,000 modes; the label of a stack of digits (a, b, c) is
    100a + 10b + c. Stacks are drawn on the fly: one ``torch.randint(N, (3, n))`` draw picks the
    R, G and B images, then flips are drawn as for any image set. ``len`` is the number of
    one-channel images the stacks are drawn from.

    ``take(index)`` gives fixed stacks for reference sets: stack i is made of the images whose
    positions are read from the SHA-256 of a salted i, so it is the same on every machine.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, *, name: str, resolution: int = 0,
                 flip: bool = False, source: str = ""):
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 1:
            raise ValueError(f"images must be uint8 (N, 1, H, W), got {images.dtype} {tuple(images.shape)}")
        check_labels(labels, len(images), 10)
        size = (resolution, resolution) if resolution else tuple(images.shape[-2:])
        super().__init__(name, (3, *size), 1000, flip, source)
        self.class_names = STACK_CLASS_NAMES
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        picks = torch.randint(len(self.images), (3, n), generator=generator)
        return self._stacked(self._on_images(picks), generator)

    def _stacked(self, picks: torch.Tensor, generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        stacks = self.images[picks, 0].transpose(0, 1)  # (3, n, H, W) -> (n, 3, H, W)
        digits = self.labels[picks]
        return self._to_float(stacks, generator), 100 * digits[0] + 10 * digits[1] + digits[2]

    def take(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed stacks at ``index`` (see the class docstring), never flipped."""
        def picks(i: int) -> list[int]:
            digest = hashlib.sha256(STACK_SALT + str(i).encode()).digest()
            return [int.from_bytes(digest[8 * k:8 * k + 8], "little") % len(self.images) for k in range(3)]

        stacks = torch.tensor([picks(int(i)) for i in index], dtype=torch.int64).reshape(-1, 3).T
        return self._stacked(self._on_images(stacks), None)


def check_labels(labels: torch.Tensor | None, count: int, num_classes: int) -> None:
    """Labels, when given, must be int64 (N,) in [0, num_classes): the nets embed them by index."""
    if labels is None:
        return
    if labels.dtype != torch.int64 or labels.shape != (count,):
        raise ValueError(f"labels must be int64 ({count},), got {labels.dtype} {tuple(labels.shape)}")
    if count and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}), got [{labels.min()}, {labels.max()}]")


# --------------------------------------------------------------------------------------------------
# Encoded images: where the bytes come from, and how they are decoded


class ImageSource(Protocol):
    """Encoded images by index: ``read`` gives a file path or the encoded bytes, ``where`` names the
    image in error messages, ``description`` names the whole source."""

    description: str

    def __len__(self) -> int: ...

    def read(self, index: int) -> str | bytes: ...

    def where(self, index: int) -> str: ...


class FileSource:
    """Image files under a folder, by their relative names."""

    def __init__(self, root: Path, names: Sequence[str]):
        self.root = Path(root)
        self.names = list(names)
        self.description = str(self.root)

    def __len__(self) -> int:
        return len(self.names)

    def read(self, index: int) -> str:
        return str(self.root / self.names[index])

    def where(self, index: int) -> str:
        return str(self.root / self.names[index])


class ZipSource:
    """Members of a zip file, read without extracting it.

    A ``ZipFile`` is not safe to share between threads, so each thread opens its own; the process
    id is part of the key so that a forked child never shares its parent's file offset.
    """

    def __init__(self, path: Path, names: Sequence[str]):
        self.path = Path(path)
        self.names = list(names)
        self.description = str(self.path)
        self._local = threading.local()

    def __len__(self) -> int:
        return len(self.names)

    def _zip(self) -> zipfile.ZipFile:
        if getattr(self._local, "pid", None) != os.getpid():
            self._local.zip = zipfile.ZipFile(self.path)
            self._local.pid = os.getpid()
        return self._local.zip

    def read(self, index: int) -> bytes:
        return self._zip().read(self.names[index])

    def where(self, index: int) -> str:
        return f"{self.path} (member {self.names[index]})"


def resize_center_crop(image: Image.Image, resolution: int) -> Image.Image:
    """RGB, short side resized to ``resolution`` (bicubic, antialiased), centre-cropped to a square.

    Resizing only the central square of the source gives exactly that, in one resampling step.
    Grayscale files become three equal channels, so every image of a folder has the same shape.
    """
    image = image.convert("RGB")
    width, height = image.size
    if (width, height) == (resolution, resolution):
        return image
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return image.resize((resolution, resolution), Image.Resampling.BICUBIC,
                        box=(left, top, left + side, top + side))


def center_crop(image: Image.Image, resolution: int) -> Image.Image:
    """RGB, the central ``resolution`` x ``resolution`` pixels without rescaling, as TensorFlow's
    ``resize_image_with_crop_or_pad`` gives them (the GAN Landscape's LSUN): a side shorter than
    ``resolution`` is padded with black on both sides instead, the odd pixel after the image."""

    def start(size: int) -> int:
        return (size - resolution) // 2 if size >= resolution else -((resolution - size) // 2)

    image = image.convert("RGB")
    left, top = start(image.size[0]), start(image.size[1])
    return image.crop((left, top, left + resolution, top + resolution))  # PIL fills outside with black


CROPS = {"resize": resize_center_crop, "center": center_crop}


@contextmanager
def opened(source: ImageSource, index: int) -> Iterator[Image.Image]:
    """Image ``index`` of ``source`` opened with PIL; a DataError names it if it cannot be read."""
    try:
        data = source.read(index)
        with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as image:
            yield image
    except UnidentifiedImageError:  # its own message shows a BytesIO's address instead of a name
        raise DataError(f"cannot read image {source.where(index)}: corrupt, or not in an image format that "
                        "PIL reads.") from None
    except DECODE_ERRORS as err:
        raise DataError(f"cannot read image {source.where(index)}: {err}") from None


def decode_image(source: ImageSource, index: int, resolution: int, crop: str = "resize") -> torch.Tensor:
    """Image ``index`` of ``source`` as uint8 (3, resolution, resolution), brought there by ``CROPS[crop]``."""
    with opened(source, index) as image:
        pixels = np.array(CROPS[crop](image, resolution))
    return torch.from_numpy(pixels).permute(2, 0, 1)


def native_resolution(source: ImageSource, what: str) -> int:
    """The side of the first image, for ``data.resolution=0``: files that share one square size (like
    CIFAR-10's 32x32 JPEGs) keep it; any image of another size is resized and cropped to it."""
    with opened(source, 0) as image:
        width, height = image.size
    if width != height:
        raise ConfigError(f"data.resolution=0 keeps the images' own size, but {source.where(0)} is "
                          f"{width}x{height}, not square; give {what} a data.resolution (e.g. 64).")
    return width


def decode_all(source: ImageSource, resolution: int, name: str, crop: str = "resize") -> torch.Tensor:
    """Every image of ``source`` as uint8 (N, 3, R, R), decoded by a thread pool, in order."""
    out = torch.empty((len(source), 3, resolution, resolution), dtype=torch.uint8)

    def decode_chunk(start: int) -> int:
        stop = min(start + DECODE_CHUNK, len(source))
        for i in range(start, stop):
            out[i] = decode_image(source, i, resolution, crop)
        return stop - start

    pool = ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="decode")
    try:
        with tqdm(total=len(source), desc=f"decoding {name}", unit="img",
                  disable=True if len(source) < PROGRESS_MIN else None) as bar:
            for done in pool.map(decode_chunk, range(0, len(source), DECODE_CHUNK)):
                bar.update(done)
    finally:
        pool.shutdown(cancel_futures=True)  # after a bad image, stop instead of decoding the rest
    return out


class LazyImages(ImageSet):
    """Images decoded per batch from their encoded form, for data sets too big to decode up front.

    The batch's images are decoded in order by a small thread pool, so a batch depends only on
    the indices drawn from the generator, not on thread timing. A forked child starts its own
    pool: the parent's threads do not exist in it.
    """

    def __init__(self, source: ImageSource, resolution: int, *, name: str, labels: torch.Tensor | None = None,
                 num_classes: int = 0, flip: bool = False, crop: str = "resize"):
        check_labels(labels, len(source), num_classes)
        super().__init__(name, (3, resolution, resolution), num_classes, flip, source.description)
        self.images = source
        self.crop = crop
        self.labels = labels
        self._pool: ThreadPoolExecutor | None = None
        self._pool_pid: int | None = None

    def __len__(self) -> int:
        return len(self.images)

    def _decode(self, index: torch.Tensor) -> torch.Tensor:
        """The uint8 images at ``index``, decoded in order by the pool."""
        if self._pool_pid != os.getpid():
            self._pool = ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="decode")
            self._pool_pid = os.getpid()
        resolution = self.shape[-1]
        return torch.stack(list(self._pool.map(lambda i: decode_image(self.images, i, resolution, self.crop), index.tolist())))

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
        index = torch.randint(len(self.images), (n,), generator=generator)
        x = self._to_float(self._decode(index), generator)
        return x, None if self.labels is None else self.labels[index]

    def take(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The images at ``index``, never flipped: fixed sets such as FID references and test images."""
        return self._to_float(self._decode(index), None), None if self.labels is None else self.labels[index]


class DecodedOnUse(InMemoryImages):
    """Image files decoded into memory (uint8) the first time an image is needed.

    Building the data set only lists the files, so what needs its shape or class count alone (``config
    show``, evaluating a run against another split) does not wait for thousands of files to decode.
    """

    def __init__(self, source: ImageSource, resolution: int, *, name: str, labels: torch.Tensor | None = None,
                 num_classes: int = 0, flip: bool = False, crop: str = "resize"):
        check_labels(labels, len(source), num_classes)
        ImageSet.__init__(self, name, (3, resolution, resolution), num_classes, flip, source.description)
        self.source, self.crop, self.labels = source, crop, labels
        self._images: torch.Tensor | None = None

    @property
    def images(self) -> torch.Tensor:
        if self._images is None:
            with torch.inference_mode(False):  # the decoding threads write into it outside any inference mode
                self._images = decode_all(self.source, self.shape[-1], self.name, self.crop)
        return self._images

    @images.setter
    def images(self, value: torch.Tensor) -> None:
        self._images = value

    def __len__(self) -> int:
        return len(self.source)


def load_images(source: ImageSource, resolution: int, *, name: str, labels: torch.Tensor | None = None,
                num_classes: int = 0, flip: bool = False, crop: str = "resize") -> InMemoryImages | LazyImages:
    """Images held in memory (decoded on first use) when their uint8 form fits under MEMORY_LIMIT, else
    decoded per batch."""
    if len(source) * 3 * resolution * resolution <= MEMORY_LIMIT:
        return DecodedOnUse(source, resolution, name=name, labels=labels, num_classes=num_classes, flip=flip,
                            crop=crop)
    return LazyImages(source, resolution, name=name, labels=labels, num_classes=num_classes, flip=flip, crop=crop)


# --------------------------------------------------------------------------------------------------
# Folders, splits and the config values that image files need


def is_image_name(name: str) -> bool:
    """An image by its suffix, skipping hidden files and macOS's ``__MACOSX`` resource forks."""
    parts = name.split("/")
    hidden = any(part.startswith(".") or part == "__MACOSX" for part in parts)
    return not hidden and name.lower().endswith(IMAGE_SUFFIXES)


def list_images(root: Path) -> list[str]:
    """The sorted relative names ('a/b.png') of the image files anywhere under ``root``."""
    names = (path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file())
    return sorted(name for name in names if is_image_name(name))


def held_out(keys: Sequence[str | bytes], test_size: int, split: str, what: str) -> list[int]:
    """The sorted indices of ``split`` when ``test_size`` of the ``keys`` are held out as the test split.

    The test split is the ``test_size`` keys that come first when all keys are ordered by
    SHA-256 of ``SPLIT_SALT + key``: a fixed pseudo-random permutation that depends on no random
    number generator, so it is the same on every machine and library version, and adding files
    moves no other file between the splits unless the new one ranks among the first
    ``test_size``.
    """
    if test_size >= len(keys) > 0:
        raise ConfigError(f"data.test_size={test_size} holds out all {len(keys)} images of {what}; "
                          "leave some for training.")
    if split == "test" and not test_size:
        raise ConfigError(f"data.split=test needs data.test_size > 0 for {what}: the number of images held out "
                          "(e.g. data.test_size=3000).")
    if not test_size:
        return list(range(len(keys)))

    def rank(i: int) -> bytes:
        key = keys[i].encode() if isinstance(keys[i], str) else keys[i]
        return hashlib.sha256(SPLIT_SALT + key).digest()

    order = sorted(range(len(keys)), key=rank)
    return sorted(order[:test_size] if split == "test" else order[test_size:])


def require_root(cfg, what: str, example: str) -> Path:
    """``data.root`` for data sets that have no default location."""
    if not cfg.root:
        raise ConfigError(f"data.name={what} needs data.root, e.g. data.root={example}.")
    root = Path(cfg.root).expanduser()
    if not root.exists():
        relative = "" if root.is_absolute() else f" (a relative data.root is taken from the current folder, {Path.cwd()})"
        raise DataError(f"{what}: data.root {root} does not exist{relative}.")
    return root


def require_resolution(cfg, what: str) -> int:
    """``data.resolution`` for files that may differ in size: there is no native size to keep."""
    if not cfg.resolution:
        raise ConfigError(f"data.name={what} needs data.resolution (the side of the square images, e.g. "
                          f"data.resolution=64): its files may differ in size.")
    return cfg.resolution
