"""Images stored one per ``.npy`` file (``npy_folder``): GAN_stability's layout for CelebA-HQ.

GAN_stability (Mescheder et al.) reads CelebA-HQ as a folder of NumPy files, each one image of shape
(3, H, W) or (1, 3, H, W) (channels first, as the CelebA-HQ creation script writes them), either uint8
in [0, 255] or float32 in [0, 1]. Here each file becomes an image in [-1, 1]: uint8 as x / 127.5 - 1,
float32 as 2x - 1; any other dtype, shape, or float values outside [0, 1] are refused with a
``DataError`` naming the file.

``data.root`` is a folder holding the files flat or in class subfolders (``<class>/<image>.npy``,
labelled by sorted class name as ``class_folder`` does; the reference's loader wants at least one
subfolder, a single one gives one class). ``data.test_size`` files are held out as the test split, by
the fixed hash order of their relative names (``images.held_out``). Every file must be square and of
one size; ``data.resolution`` 0 keeps it, another value resizes each batch (bilinear, antialiased).
Files are read per batch (CelebA-HQ at 1024 px is 94 GB as uint8), with ``np.load(allow_pickle=False)``,
so a file holding pickled objects is refused instead of run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ganscape.data.folders import class_labels
from ganscape.data.images import LazyImages, held_out, require_root
from ganscape.errors import DataError

SUFFIX = ".npy"


def read_npy_image(path: Path) -> tuple[np.ndarray, float]:
    """The image in ``path`` as an array (3, H, W) and the factor that puts it on the uint8 scale [0, 255]."""
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:  # ValueError: not a .npy file, or pickled objects
        raise DataError(f"cannot read {path} as a NumPy image: {err}") from None
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 3 or array.shape[0] != 3:
        raise DataError(f"{path} holds an array of shape {array.shape}; an image file must be (3, H, W) or "
                        "(1, 3, H, W), channels first.")
    if array.dtype == np.uint8:
        return array, 1.0
    if array.dtype == np.float32:
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise DataError(f"{path} is float32 with values in [{low:.4g}, {high:.4g}]; float32 images must lie "
                            "in [0, 1] (uint8 ones in [0, 255]).")
        return array, 255.0
    raise DataError(f"{path} has dtype {array.dtype}; an image file must be uint8 (0..255) or float32 (0..1).")


class NpySource:
    """The ``.npy`` files of a data set, by index (the ``ImageSource`` contract: ``read`` gives the path)."""

    def __init__(self, root: Path, files: list[Path]):
        self.files = files
        self.description = str(root)

    def __len__(self) -> int:
        return len(self.files)

    def read(self, index: int) -> str:
        return str(self.files[index])

    def where(self, index: int) -> str:
        return str(self.files[index])


class NpyImages(LazyImages):
    """Images read from their ``.npy`` files per batch (so training prefetches the next batch, as for any
    ``LazyImages``), with optional int64 labels.

    A batch is put on the uint8 scale as float32 (exact for uint8 files, 255x for float32 ones); the
    conversion every image set shares (``ImageSet._to_float``: x / 127.5 - 1, resizing to
    ``data.resolution``, the flip draws) then makes it [-1, 1].
    """

    def __init__(self, source: NpySource, resolution: int, *, labels: torch.Tensor | None, num_classes: int,
                 flip: bool):
        self.side = image_side(source.files[0])  # the files' own side, which every file must have
        super().__init__(source, resolution or self.side, name="npy_folder", labels=labels, num_classes=num_classes,
                         flip=flip)

    def _decode(self, index: torch.Tensor) -> torch.Tensor:
        """The images at ``index`` as float32 (N, 3, side, side) on the uint8 scale."""
        batch = torch.empty((len(index), 3, self.side, self.side), dtype=torch.float32)
        for row, i in enumerate(index.tolist()):
            path = self.images.files[i]
            array, to_uint8_scale = read_npy_image(path)
            if array.shape[1:] != (self.side, self.side):
                raise DataError(f"{path} is {array.shape[2]}x{array.shape[1]}, but the images of "
                                f"{self.images.description} are {self.side}x{self.side} (the first file's size); "
                                "give every file the same size.")
            batch[row] = torch.from_numpy(array.astype(np.float32)).mul_(to_uint8_scale)
        return batch


def image_side(path: Path) -> int:
    """The side of the square image in ``path`` (a DataError if it is not square)."""
    array, _ = read_npy_image(path)
    height, width = array.shape[1:]
    if height != width:
        raise DataError(f"{path} is {width}x{height}; npy_folder images must be square.")
    return int(height)


def npy_folder(cfg) -> NpyImages:
    """The ``.npy`` images under ``data.root`` (flat, or in class subfolders), minus or only the held-out split."""
    root = require_root(cfg, "npy_folder", "data/celebA-HQ")
    if not root.is_dir():
        raise DataError(f"npy_folder: data.root {root} is not a folder (it should hold one .npy file per image).")
    names = sorted(p.relative_to(root).as_posix() for p in root.rglob(f"*{SUFFIX}")
                   if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not names:
        raise DataError(f"npy_folder: no {SUFFIX} files under {root}.")
    nested = [name for name in names if "/" in name]
    if nested and len(nested) < len(names):
        loose = next(name for name in names if "/" not in name)
        raise DataError(f"npy_folder: {root} holds .npy files both in subfolders ({nested[0]}) and directly "
                        f"({loose}); keep them all flat, or all in class subfolders.")
    classes, labels = class_labels(names, root) if nested else ([], None)
    keep = held_out(names, cfg.test_size, cfg.split, f"npy_folder {root}")
    data = NpyImages(NpySource(root, [root / names[i] for i in keep]), cfg.resolution,
                     labels=None if labels is None else labels[keep], num_classes=len(classes), flip=cfg.flip)
    data.class_names = tuple(classes)
    return data
