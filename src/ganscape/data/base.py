"""The data set contract, as typing Protocols that code checks with ``isinstance``.

Every data set is a ``Dataset``: training needs nothing more. Some also hold fixed images
(``FixedImages``: FID references, held-out test images for the reconstruction error), and the 2-D
mixtures know their modes (``Mixture``: mode coverage). These are structural: a class satisfies a
protocol by having its members, without inheriting from it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

Tensor = torch.Tensor


@runtime_checkable
class Dataset(Protocol):
    """Samples of one ``shape`` (e.g. ``(2,)`` or ``(3, 32, 32)``), with ``num_classes`` labels (0: none)
    named ``class_names``.

    ``sample(n, generator)`` gives a batch of floats (images in [-1, 1], NCHW, on the CPU) and int64
    labels of shape ``(n,)`` or None. All randomness comes from ``generator``, so a run's data order
    is reproducible and resumable.
    """

    name: str
    shape: tuple[int, ...]
    num_classes: int
    class_names: tuple[str, ...]  # one per class, in label order

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor | None]: ...


@runtime_checkable
class FixedImages(Dataset, Protocol):
    """A data set of ``len`` fixed images: ``take(index)`` gives those at ``index``, never flipped."""

    def __len__(self) -> int: ...

    def take(self, index: Tensor) -> tuple[Tensor, Tensor | None]: ...


@runtime_checkable
class Mixture(Dataset, Protocol):
    """A mixture of isotropic Gaussians: its mode ``centers`` (K, dim) and their shared ``std``."""

    centers: Tensor
    std: float


def is_image_data(data: Dataset) -> bool:
    """Images are (C, H, W); anything else (2-D points) is not."""
    return len(data.shape) == 3
