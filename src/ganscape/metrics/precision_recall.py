"""Improved precision and recall (Kynkaanniemi et al. 2019) on precomputed features.

Each set's support is estimated as the union of hyperspheres centred on its samples, the radius of
sample i being the distance to its k-th nearest neighbour within the same set (itself excluded;
k = 3 as in the paper). Then

- precision = fraction of fake samples inside at least one real hypersphere (sample quality),
- recall    = fraction of real samples inside at least one fake hypersphere (coverage/diversity).

Unlike FID, the two numbers separate a generator that makes poor images from one that drops modes.
Pairwise distances are computed with ``torch.cdist`` in row blocks on the features' device, so the
full ``n x m`` matrix (10 GB in float32 for 50k x 50k) is never materialised: memory is
``block_size x m``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


def _as_features(features) -> torch.Tensor:
    """Features as a floating ``n x d`` tensor on their own device (non-float input -> float32)."""
    x = torch.as_tensor(features).detach().flatten(1)
    return x if x.is_floating_point() else x.to(torch.float32)


def knn_radii(features: torch.Tensor, k: int = 3, block_size: int = 1024) -> torch.Tensor:
    """Distance from each row to its k-th nearest other row.

    A row's distance to itself is 0, the smallest in its row of the distance matrix, so the k-th
    nearest *other* row is the (k + 1)-th smallest entry.
    """
    return torch.cat([torch.cdist(features[start:start + block_size], features)
                      .kthvalue(k + 1, dim=1).values
                      for start in range(0, len(features), block_size)])


def coverage(points: torch.Tensor, centers: torch.Tensor, radii: torch.Tensor,
             block_size: int = 1024) -> float:
    """Fraction of ``points`` within distance ``radii[j]`` (inclusive) of some ``centers[j]``."""
    inside = torch.cat([(torch.cdist(points[start:start + block_size], centers) <= radii).any(dim=1)
                        for start in range(0, len(points), block_size)])
    return float(inside.to(torch.float64).mean())


def precision_recall(real, fake, k: int = 3, block_size: int = 1024) -> dict[str, float]:
    """Improved precision and recall of ``fake`` features with respect to ``real`` ones.

    Both sets are ``n x d`` (torch tensors, on any device, or numpy arrays) and need more than k
    rows. Distances use the input's floating dtype (float32 is what the reference code uses).
    """
    real, fake = _as_features(real), _as_features(fake)
    fake = fake.to(real)
    return {
        "precision": coverage(fake, real, knn_radii(real, k, block_size), block_size),
        "recall": coverage(real, fake, knn_radii(fake, k, block_size), block_size),
    }


@dataclass
class PRSettings:
    """``metrics.pr.*``."""

    k: int = field(default=3, metadata={"min": 1, "max": 1000,
                                        "help": "precision and recall: k of the k-nearest-neighbour balls"})


def pr_metric(scoring, settings: PRSettings) -> dict[str, float]:
    """The registered metric ``pr``: the generated samples' features against the reference's."""
    device = scoring.evaluator.device
    return precision_recall(scoring.real_features().to(device), scoring.features.to(device), k=settings.k)


def pr_protocol(evaluator, settings: PRSettings) -> dict:
    return {"k": settings.k}
