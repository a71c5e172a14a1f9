"""Kernel Inception Distance (Binkowski et al. 2018) on precomputed features.

KID is the squared maximum mean discrepancy between the two feature distributions under the cubic
polynomial kernel k(a, b) = (a.b / d + 1)^3, d the feature dimension. Its unbiased estimator on
samples x_1..x_m and y_1..y_n is

    MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (n (n - 1))
              - 2 sum_{i, j} k(x_i, y_j) / (m n).

Unlike FID it has no bias from the sample size (its expectation is the true MMD^2, so it can be
slightly negative), which makes scores at different sample counts comparable.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import torch


def polynomial_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Gram matrix k(a_i, b_j) = (a_i . b_j / d + 1)^3 of the rows of ``a`` and ``b``."""
    return (a @ b.T / a.shape[1] + 1) ** 3


def mmd2_unbiased(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 estimate between the rows of ``x`` and ``y`` under the polynomial kernel.

    The diagonals k(x_i, x_i) and k(y_i, y_i) are left out of the within-set means: including them
    is what makes the plain (V-statistic) estimator biased.
    """
    m, n = len(x), len(y)
    kxx, kyy = polynomial_kernel(x, x), polynomial_kernel(y, y)
    within_x = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    within_y = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return float(within_x + within_y - 2 * polynomial_kernel(x, y).mean())


def kernel_inception_distance(features1, features2, num_subsets: int = 100,
                              subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Mean and standard deviation of MMD^2_u over random subsets, as Binkowski et al.'s code.

    Each of ``num_subsets`` rounds draws ``subset_size`` rows without replacement from each set
    (capped at the smaller set's size) and evaluates ``mmd2_unbiased`` on them; the subsets keep the
    Gram matrices small (``subset_size^2``) and their spread gives an error bar. The std is the
    population one (``np.std``), as the reference code reports it. Computed in float64 on the
    features' device; ``seed`` fixes the subsets, so the score is reproducible.

    The v3 compare_gan code (A.7) instead partitions the sets into deterministic blocks of at most
    1024 samples; both average the same unbiased estimator over pieces of about 1000 samples.
    """
    x = torch.as_tensor(features1).detach().to(torch.float64).flatten(1)
    y = torch.as_tensor(features2).detach().to(torch.float64).flatten(1)
    size = min(subset_size, len(x), len(y))
    generator = torch.Generator().manual_seed(seed)
    estimates = torch.tensor([
        mmd2_unbiased(x[torch.randperm(len(x), generator=generator)[:size].to(x.device)],
                      y[torch.randperm(len(y), generator=generator)[:size].to(y.device)])
        for _ in range(num_subsets)], dtype=torch.float64)
    return float(estimates.mean()), float(estimates.std(correction=0))


@dataclass
class KIDSettings:
    """``metrics.kid.*``."""

    subsets: int = field(default=100, metadata={"min": 1, "max": 100000, "help": "KID: subsets averaged"})
    subset_size: int = field(default=1000, metadata={"min": 2, "max": 1 << 16, "help": "KID: samples per subset"})


def used_subset_size(evaluator, settings: KIDSettings) -> int:
    """``metrics.kid.subset_size``, clipped to the sample and reference counts."""
    return min(settings.subset_size, evaluator.num_samples, evaluator.num_reference or evaluator.num_samples)


def kid_check(evaluator, settings: KIDSettings) -> None:
    """Warn, before any work, when the subsets are clipped to fewer samples than asked."""
    from ganscape.errors import GanscapeWarning

    asked, used = settings.subset_size, used_subset_size(evaluator, settings)
    if used < asked:
        whole = used == evaluator.num_samples == evaluator.num_reference
        warnings.warn(f"metrics.kid.subset_size={asked} is more than the {used} samples or reference images; KID "
                      f"uses subsets of {used}" + (" (every subset is then the whole set, so kid_std is 0)"
                                                   if whole else "") + ".", GanscapeWarning, stacklevel=4)


def kid_metric(scoring, settings: KIDSettings) -> dict[str, float]:
    """The registered metric ``kid``: the generated samples' features against the reference's."""
    evaluator = scoring.evaluator
    mean, std = kernel_inception_distance(scoring.real_features(), scoring.features, settings.subsets,
                                          used_subset_size(evaluator, settings), seed=evaluator.seed)
    return {"kid_mean": mean, "kid_std": std}


def kid_protocol(evaluator, settings: KIDSettings) -> dict:
    return {"subsets": settings.subsets, "subset_size": used_subset_size(evaluator, settings),
            "subset_size_asked": settings.subset_size, "kernel": "(x.y / d + 1)^3"}
