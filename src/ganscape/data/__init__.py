"""Data sets, registered by name in ``DATASETS``.

A data set draws training batches with ``sample(n, generator)``, returning images or points
(float, NCHW for images) and integer labels or ``None``; all randomness comes from the given
``torch.Generator`` so that a run's data order is reproducible and resumable.
"""

from ganscape.data.toy import DATASETS, GaussianMixture2D

__all__ = ["DATASETS", "GaussianMixture2D", "build_dataset"]


def build_dataset(cfg):
    """The data set named by ``cfg.data``."""
    from ganscape.errors import lookup

    return lookup(DATASETS, cfg.data.name, "data set")()
