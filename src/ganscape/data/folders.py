"""Image files in a folder (``image_folder``) or in class folders (``class_folder``).

``image_folder``: every .png .jpg .jpeg .webp .bmp file under ``data.root`` (recursively, in a folder
or a ``.zip``), no labels. ``data.test_size`` images are held out as the test split, chosen by a fixed
pseudo-random order of the relative file names (see ``images.held_out``), so the split is the
same on every build and every machine. The GAN Landscape study holds out 3,000 of CelebA-HQ's
30,000 images: ``data.test_size=3000``.

``class_folder``: ImageNet's layout, ``root/<class>/<image>``, as a folder or a ``.zip`` read in
place (no extraction). The label is the index of the class name in sorted order. When every image
lies at least two folders deep under one single top-level folder (a zip of ``train/<class>/...``),
that folder is skipped. ``data.split`` selects nothing here: point ``data.root`` at the training
or the test folder or zip.

Each image is resized (short side) and centre-cropped to ``data.resolution`` (or, with
``data.crop=center``, centre-cropped without rescaling); 0 keeps the size of the first image if it is
square (32 for the CIFAR-10 zips). Hidden files and ``__MACOSX`` folders are ignored.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch

from ganscape.data.images import (IMAGE_SUFFIXES, FileSource, ZipSource, held_out, is_image_name, list_images,
                                  load_images, native_resolution, require_root)
from ganscape.errors import DataError


def image_folder(cfg):
    """The images under ``data.root`` (a folder or a zip), without labels, minus or only the held-out
    test split. ``data.resolution=0`` keeps the images' size when they are square (all of the first's)."""
    root = require_root(cfg, "image_folder", "data/celeba_hq")
    if root.is_dir():
        names = list_images(root)
        make_source = FileSource
    elif zipfile.is_zipfile(root):
        names = zip_image_names(root)
        make_source = ZipSource
    else:
        raise DataError(f"image_folder: data.root {root} is neither a folder nor a zip file.")
    if not names:
        raise DataError(f"image_folder: no images ({', '.join(IMAGE_SUFFIXES)}) in {root}.")
    keep = held_out(names, cfg.test_size, cfg.split, f"image_folder {root}")
    source = make_source(root, [names[i] for i in keep])
    resolution = cfg.resolution or native_resolution(source, "image_folder")
    return load_images(source, resolution, name="image_folder", flip=cfg.flip, crop=cfg.crop)


MAX_MEMBER_BYTES = 256 << 20  # no single image file of a data set is larger than this


def zip_image_names(path: Path) -> list[str]:
    """The sorted names of the image members of a zip file, refusing one that would inflate to more
    than ``MAX_MEMBER_BYTES`` (the sizes are read from the zip's directory, nothing is inflated)."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [info for info in archive.infolist() if not info.is_dir() and is_image_name(info.filename)]
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"cannot read the zip file {path}: {err}") from None
    huge = [info for info in members if info.file_size > MAX_MEMBER_BYTES]
    if huge:
        raise DataError(f"{path} (member {huge[0].filename}) would inflate to {huge[0].file_size:,} bytes, more than "
                        f"any image of a data set ({MAX_MEMBER_BYTES:,}); the zip is corrupt or malicious.")
    return sorted(info.filename for info in members)


def class_labels(names: list[str], root: Path) -> tuple[list[str], torch.Tensor]:
    """The sorted class names and each image's label, from ``<class>/<image>`` names.

    A single top-level folder above the class folders (``train/<class>/<image>``) is skipped.
    """
    parts = [name.split("/") for name in names]
    skip = int(len({p[0] for p in parts}) == 1 and all(len(p) >= 3 for p in parts))
    loose = [name for name, p in zip(names, parts) if len(p) - skip < 2]
    if loose:
        raise DataError(f"class_folder expects <class>/<image> under {root}, but {loose[0]!r} is in no class "
                        f"folder ({len(loose)} such image(s)).")
    classes = sorted({p[skip] for p in parts})
    index = {name: i for i, name in enumerate(classes)}
    return classes, torch.tensor([index[p[skip]] for p in parts], dtype=torch.int64)


def class_folder(cfg):
    """The images of ``root/<class>/`` (a folder or a zip), labelled by sorted class name."""
    root = require_root(cfg, "class_folder", "data/imagenet/train")
    if root.is_dir():
        names = list_images(root)
        source = FileSource(root, names)
    elif zipfile.is_zipfile(root):
        names = zip_image_names(root)
        source = ZipSource(root, names)
    else:
        raise DataError(f"class_folder: data.root {root} is neither a folder nor a zip file.")
    if not names:
        raise DataError(f"class_folder: no images ({', '.join(IMAGE_SUFFIXES)}) in {root}.")
    classes, labels = class_labels(names, root)
    resolution = cfg.resolution or native_resolution(source, "class_folder")
    data = load_images(source, resolution, name="class_folder", labels=labels, num_classes=len(classes),
                       flip=cfg.flip, crop=cfg.crop)
    data.class_names = tuple(classes)
    return data
