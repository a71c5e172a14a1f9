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

Nothing downloads implicitly; ``DOWNLOADS`` lists what ``ganscape data download NAME`` fetches.
"""

from ganscape.data import cifar10 as _cifar10
from ganscape.data.base import Dataset, FixedImages, Mixture
from ganscape.data.digits import digits, stacked_digits
from ganscape.data.folders import class_folder, image_folder
from ganscape.data.lmdb_images import lmdb_images
from ganscape.data.mnist import mnist, stacked_mnist
from ganscape.data.toy import GaussianMixture2D, grid25, ring8

__all__ = ["DATASETS", "DOWNLOADS", "Dataset", "FixedImages", "GaussianMixture2D", "Mixture", "build_dataset"]

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
}

DOWNLOADS = {"cifar10": _cifar10.download}
DECODED = ("image_folder", "class_folder", "lmdb")  # decoded from image files: data.crop applies


def build_dataset(cfg) -> Dataset:
    """The data set named by ``cfg.data``."""
    from ganscape.errors import lookup

    return lookup(DATASETS, cfg.data.name, "data set")(cfg.data)
