"""Embedded image data: scikit-learn's bundled 8x8 handwritten digits (no file, no download).

scikit-learn ships 1,797 digits of 8x8 pixels with values 0..16 in 10 classes. They are scaled to
uint8 (x * 255 / 16) and resized (bilinear) to ``data.resolution``, by default 32.

``digits``: 1x32x32 with the digit as label. ``stacked_digits``: three random digits as R, G, B,
1,000 modes, label 100a + 10b + c (the stacked-MNIST benchmark in miniature).

Split: a fixed hold-out of 297 digits for the test split (1,500 remain for training), chosen by
the same fixed pseudo-random order as ``image_folder`` (see ``images.held_out``), over the
digits' positions in scikit-learn's order. ``data.test_size`` does not change it.
"""

from __future__ import annotations

import numpy as np
import torch

from ganscape.data.images import InMemoryImages, StackedImages, held_out

DEFAULT_RESOLUTION = 32
TEST_SIZE = 297
SOURCE = "sklearn.datasets.load_digits"


def load_split(split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The split's digits as uint8 (N, 1, 8, 8) and labels int64 (N,)."""
    from sklearn.datasets import load_digits  # imported here: scikit-learn takes a second to import

    bunch = load_digits()
    keep = held_out([str(i) for i in range(len(bunch.target))], TEST_SIZE, split, "digits")
    images = np.rint(bunch.images[keep] * (255 / 16)).astype(np.uint8)
    return torch.from_numpy(images)[:, None], torch.from_numpy(bunch.target[keep].astype(np.int64))


def digits(cfg) -> InMemoryImages:
    """The split's digits, 1 channel, 10 classes: train 1,500, test 297."""
    images, labels = load_split(cfg.split)
    return InMemoryImages(images, labels, name="digits", num_classes=10,
                          resolution=cfg.resolution or DEFAULT_RESOLUTION, flip=cfg.flip, source=SOURCE)


def stacked_digits(cfg) -> StackedImages:
    """Three random digits of the split as R, G, B; label 100a + 10b + c (1,000 classes)."""
    images, labels = load_split(cfg.split)
    return StackedImages(images, labels, name="stacked_digits", resolution=cfg.resolution or DEFAULT_RESOLUTION,
                         flip=cfg.flip, source=SOURCE)
