"""Data sets, registered by name in ``DATASETS``.

A data set is built from the data config (``DATASETS[name](cfg.data)``) and follows the contract of
``ganscape.data.base``: every one is a ``Dataset`` (``shape``, ``num_classes``,
``sample(n, generator)``); image sets that hold fixed images are also ``FixedImages`` (``len`` and
``take(index)``, for FID references and held-out test images); the 2-D mixtures are ``Mixture``s
(mode ``centers`` and ``std``, for mode coverage).

| name | what | default ``data.root`` |
|---|---|---|
| ``ring8``, ``grid25`` | 2-D Gaussian mixtures, generated (``toy``) | none needed |
| ``digits``, ``stacked_digits`` | scikit-learn's bundled 8x8 digits, 1x32x32 / 3x32x32 (``digits``) | none needed |
| ``cifar10`` | the official python-version archive or its folder (``cifar10``) | ``data/cifar10`` |
| ``mnist``, ``stacked_mnist`` | the standard IDX files (``mnist``) | ``data/mnist`` |
| ``image_folder`` | any folder or zip of images, no labels (``folders``) | required |
| ``class_folder`` | ``<class>/<image>`` in a folder or zip (``folders``) | required |
| ``lmdb`` | LSUN-style LMDB of encoded images (``lmdb_images``) | required |
| ``npy_folder`` | one ``.npy`` image per file, flat or in class folders (``npy_folder``) | required |

No data set downloads implicitly; ``DOWNLOADS`` lists what ``ganscape data download NAME`` fetches.
"""

from typing import NamedTuple

from ganscape.data import cifar10 as _cifar10
from ganscape.data.base import Dataset, FixedImages, Mixture
from ganscape.data.digits import digits, stacked_digits
from ganscape.data.folders import class_folder, image_folder
from ganscape.data.lmdb_images import lmdb_images
from ganscape.data.images import STACK_CLASS_NAMES
from ganscape.data.mnist import DEFAULT_RESOLUTION as MNIST_RESOLUTION
from ganscape.data.mnist import mnist, stacked_mnist
from ganscape.data.npy_folder import npy_folder
from ganscape.data.toy import GaussianMixture2D, grid25, ring8

__all__ = ["DATASETS", "DOWNLOADS", "Dataset", "FixedImages", "GaussianMixture2D", "Mixture", "SampleShape",
           "build_dataset", "declared_shape"]

DATASETS = {
    "ring8": ring8,
    "grid25": grid25,
    "digits": digits,
    "stacked_digits": stacked_digits,
    "cifar10": _cifar10.cifar10,
    "mnist": mnist,
    "stacked_mnist": stacked_mnist,
    "image_folder": image_folder,
    "class_folder": class_folder,
    "lmdb": lmdb_images,
    "npy_folder": npy_folder,
}

DOWNLOADS = {"cifar10": _cifar10.download}
DECODED = ("image_folder", "class_folder", "lmdb")  # decoded from image files: data.crop applies


def build_dataset(cfg) -> Dataset:
    """The data set named by ``cfg.data``."""
    from ganscape.errors import lookup

    return lookup(DATASETS, cfg.data.name, "data set")(cfg.data)


class Layout(NamedTuple):
    """What a data set read from files holds, known without reading them: ``channels``, the side of its
    images when ``data.resolution`` is 0 (0: the files' own), its classes (None: as many as the files
    have) and their names (empty: "0", "1", ...)."""

    channels: int
    resolution: int = 0
    num_classes: int | None = 0
    class_names: tuple[str, ...] = ()


LAYOUTS = {
    "cifar10": Layout(3, 32, 10, _cifar10.CLASS_NAMES),
    "mnist": Layout(1, MNIST_RESOLUTION, 10),
    "stacked_mnist": Layout(3, MNIST_RESOLUTION, 1000, STACK_CLASS_NAMES),
    "image_folder": Layout(3),
    "class_folder": Layout(3, 0, None),
    "lmdb": Layout(3),
    "npy_folder": Layout(3, 0, None),
}


class SampleShape(NamedTuple):
    """A data set's sample shape and classes: what ``ModelSpec.of_run`` reads of it."""

    shape: tuple[int, ...]
    num_classes: int
    class_names: tuple[str, ...]


def declared_shape(cfg) -> SampleShape | None:
    """The sample shape and classes of the data set ``cfg.data`` names, where its config fixes them, so that
    networks can be sized without its files; None where they depend on the files (an image folder's own
    size, a class folder's classes when conditional) or the set is not read from files."""
    layout = LAYOUTS.get(cfg.data.name)
    if layout is None:
        return None
    side = cfg.data.resolution or layout.resolution
    classes = layout.num_classes if cfg.data.conditional else 0
    if not side or classes is None:
        return None
    return SampleShape((layout.channels, side, side), classes,
                       layout.class_names or tuple(str(k) for k in range(classes)))
