"""Two-dimensional mixtures of Gaussians, generated on the fly (no files, no download).

``ring8``: 8 modes evenly spaced on a circle of radius 2, each an isotropic Gaussian of std 0.02.
``grid25``: 25 modes on a 5x5 grid with spacing 2 (coordinates -4, -2, 0, 2, 4), std 0.05.
These are the standard mode-collapse benchmarks (Metz et al., unrolled GANs; VEEGAN; PacGAN).
"""

from __future__ import annotations

import math

import torch


class GaussianMixture2D:
    """An equal-weight mixture of isotropic 2-D Gaussians with a shared std."""

    shape = (2,)
    num_classes = 0
    class_names = ()

    def __init__(self, name: str, centers: torch.Tensor, std: float):
        self.name = name
        self.centers = centers.to(torch.float32)
        self.std = float(std)

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, None]:
        modes = torch.randint(len(self.centers), (n,), generator=generator)
        noise = torch.randn(n, 2, generator=generator)
        return self.centers[modes] + self.std * noise, None

    def __repr__(self) -> str:
        return f"GaussianMixture2D({self.name!r}, modes={len(self.centers)}, std={self.std})"


def ring8(cfg=None) -> GaussianMixture2D:
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return GaussianMixture2D("ring8", 2.0 * torch.stack([angles.cos(), angles.sin()], dim=1), std=0.02)


def grid25(cfg=None) -> GaussianMixture2D:
    axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    centers = torch.cartesian_prod(axis, axis)
    return GaussianMixture2D("grid25", centers, std=0.05)


DATASETS = {"ring8": ring8, "grid25": grid25}
