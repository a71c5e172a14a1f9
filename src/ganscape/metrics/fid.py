"""Frechet Inception Distance (Heusel et al. 2017) on precomputed features.

FID fits a Gaussian to each feature set (Inception ``pool_3`` activations, 2048-d, in the standard
protocol; see ``papers.md`` A.7) and returns the Frechet (2-Wasserstein) distance between the two:

    FID = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2}).

Everything is computed in float64: the trace term is a small difference of large numbers, and
float32 loses several significant digits of the final score on 2048-d features.
"""

from __future__ import annotations

import torch


def feature_statistics(features) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance of ``features`` (``n x d``; torch tensor or numpy array), in float64.

    The covariance is the unbiased estimate (divisor ``n - 1``) with samples as rows, exactly as
    ``np.cov(features, rowvar=False)`` in the TF FID code, so statistics are interchangeable with it.
    """
    x = torch.as_tensor(features).detach().to(torch.float64).flatten(1)
    return x.mean(dim=0), torch.cov(x.T)


def _psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    """Symmetric square root V diag(sqrt(max(w, 0))) V^T of a symmetric PSD matrix via ``eigh``.

    Eigenvalues that round-off pushed slightly below zero are clamped to 0, their exact value.
    """
    eigenvalues, eigenvectors = torch.linalg.eigh(matrix)
    return (eigenvectors * eigenvalues.clamp(min=0).sqrt()) @ eigenvectors.T


def trace_sqrt_product(sigma1: torch.Tensor, sigma2: torch.Tensor) -> float:
    """tr((S1 S2)^{1/2}) for covariance matrices S1, S2, stable when they are (near) singular.

    Method: S1 S2 = R (R S2) with R = S1^{1/2}, and AB has the eigenvalues of BA, so S1 S2 has the
    eigenvalues of M = R S2 R, which is symmetric PSD. The principal root of S1 S2 therefore has
    eigenvalues sqrt(lambda_i(M)) and tr((S1 S2)^{1/2}) = sum_i sqrt(lambda_i(M)).

    Why not ``scipy.linalg.sqrtm(S1 @ S2)`` as in the TF code: S1 S2 is not symmetric, its Schur-based
    root is slow for 2048-d matrices and, when the covariances are near singular (fewer samples than
    dimensions, collapsed generators), returns complex values and inaccurate traces that the
    reference code patches by adding ``eps * I``. Two symmetric eigendecompositions are fast, real
    by construction, and need no such offset; round-off negatives in lambda(M) are clamped to 0.
    """
    root = _psd_sqrt(sigma1)
    inner = root @ sigma2 @ root
    eigenvalues = torch.linalg.eigvalsh((inner + inner.T) / 2)
    return float(eigenvalues.clamp(min=0).sqrt().sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Frechet distance ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^{1/2}) in float64.

    Arguments are means and covariances (torch tensors or numpy arrays), e.g. from
    ``feature_statistics``. The distance is symmetric, and 0 for identical statistics.
    """
    mu1, sigma1, mu2, sigma2 = (torch.as_tensor(a).detach().to(torch.float64).cpu()
                                for a in (mu1, sigma1, mu2, sigma2))
    mean_term = float(((mu1 - mu2) ** 2).sum())
    return mean_term + float(sigma1.trace() + sigma2.trace()) - 2 * trace_sqrt_product(sigma1, sigma2)


def fid_from_features(features1, features2) -> float:
    """FID between two feature sets (``n1 x d`` and ``n2 x d``).

    The score is biased upward for small sets and depends on their sizes, so compare FIDs only at
    equal sample counts and state them (A.7 pitfall 1: e.g. 10k/10k).
    """
    return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))


def fid_metric(scoring, settings: None) -> dict[str, float]:
    """The registered metric ``fid``: the generated samples' features against the reference's."""
    return {"fid": fid_from_features(scoring.real_features(), scoring.features)}
