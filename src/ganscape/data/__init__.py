"""Data sets, registered by name in ``DATASETS``.

A data set is built from the data config (``DATASETS[name](cfg.data)``) and offers:

- ``shape``: the shape of one sample, e.g. ``(2,)`` or ``(3, 32, 32)``;
- ``num_classes``: the number of class labels, 0 when it has none;
- ``sample(n, generator) -> (x, labels)``: a batch of floats (images in [-1, 1], NCHW) and integer
  labels of shape ``(n,)`` or ``None``. All randomness comes from the given ``torch.Generator``, so
  a run's data order is reproducible and resumable.
"""

from ganscape.data.toy import DATASETS, GaussianMixture2D

__all__ = ["DATASETS", "GaussianMixture2D", "build_dataset"]


def build_dataset(cfg):
    """The data set named by ``cfg.data``."""
    from ganscape.errors import lookup

    return lookup(DATASETS, cfg.data.name, "data set")(cfg.data)
