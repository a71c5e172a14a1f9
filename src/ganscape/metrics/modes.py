"""Mode coverage and sample quality on mixtures of Gaussians with known modes.

Definitions (those of the mode-collapse literature: Metz et al. 2017, Srivastava et al. 2017):

- A sample is **high quality** when it lies within ``3 * std`` (Euclidean distance) of some mode
  centre, ``std`` being the mixture's component standard deviation.
- Every high-quality sample is assigned to its nearest mode. A mode is **covered** when at least
  1% of *all* generated samples are assigned to it.
- ``high_quality_pct`` is the percentage of all samples that are high quality.
- ``kl_to_uniform`` is KL(p || u) = sum_k p_k log(K p_k), where p is the histogram of high-quality
  samples over the K modes and u is uniform. It is 0 when every mode receives the same share and
  log K when all high-quality samples sit in one mode; it is infinite when no sample is high quality.
"""

from __future__ import annotations

import math

import torch


def mode_statistics(samples: torch.Tensor, centers: torch.Tensor, std: float,
                    radius: float = 3.0, min_fraction: float = 0.01) -> dict[str, float]:
    samples = samples.detach().to(torch.float64).flatten(1)
    centers = centers.to(samples)
    distances = torch.cdist(samples, centers)
    nearest_distance, nearest = distances.min(dim=1)
    high_quality = nearest_distance <= radius * std
    counts = torch.bincount(nearest[high_quality], minlength=len(centers)).to(torch.float64)
    covered = int((counts >= min_fraction * len(samples)).sum())
    total = counts.sum()
    if total > 0:
        p = counts[counts > 0] / total
        kl = float((p * (p * len(centers)).log()).sum())
    else:
        kl = math.inf
    return {
        "modes_covered": covered,
        "num_modes": len(centers),
        "high_quality_pct": 100.0 * float(high_quality.to(torch.float64).mean()),
        "kl_to_uniform": kl,
    }
