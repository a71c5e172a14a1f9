"""Data sets, registered by name in ``DATASETS``.

A data set is built from the data config (``DATASETS[name](cfg.data)``) and offers:

- ``shape``: the shape of one sample, e.g. ``(2,)`` or ``(3, 32, 32)``;
- ``num_classes``: the number of class labels, 0 when it has none;
- ``sample(n, generator) -> (x, labels)``: a batch of floats (images in [-1, 1], NCHW, on the CPU)
  and int64 labels of shape ``(n,)`` or ``None``. All randomness comes from the given
  ``torch.Generator``, so a run's data order is reproducible and resumable.

Image data sets also have ``len`` (their number of images) and a readable ``repr``. Those that hold
fixed images (all but the stacked sets, whose samples are drawn on the fly) also offer
``take(index) -> (x, labels)``: the images at the given indices, never flipped, for fixed sets
such as FID references and held-out test images.

| name | what | default ``data.root`` |
|---|---|---|
| ``ring8``, ``grid25`` | 2-D Gaussian mixtures, generated (``toy``) | none needed |
| ``digits``, ``stacked_digits`` | scikit-learn's bundled 8x8 digits, 1x32x32 / 3x32x32 (``digits``) | none needed |
| ``cifar10`` | the official python-version archive or its folder (``cifar10``) | ``data/cifar10`` |
| ``mnist``, ``stacked_mnist`` | the standard IDX files (``mnist``) | ``data/mnist`` |
| ``image_folder`` | any folder of images, no labels (``folders``) | required |
| ``class_folder`` | ``<class>/<image>`` in a folder or zip (``folders``) | required |
| ``lmdb`` | LSUN-style LMDB of encoded images (``lmdb_images``) | required |

Nothing downloads implicitly; ``DOWNLOADS`` lists what ``ganscape data download NAME`` fetches.
"""

from ganscape.data import cifar10 as _cifar10
from ganscape.data.digits import digits, stacked_digits
from ganscape.data.folders import class_folder, image_folder
from ganscape.data.lmdb_images import lmdb_images
from ganscape.data.mnist import mnist, stacked_mnist
from ganscape.data.toy import GaussianMixture2D, grid25, ring8

__all__ = ["DATASETS", "DOWNLOADS", "GaussianMixture2D", "build_dataset"]

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


def build_dataset(cfg):
    """The data set named by ``cfg.data``."""
    from ganscape.errors import lookup

    return lookup(DATASETS, cfg.data.name, "data set")(cfg.data)
