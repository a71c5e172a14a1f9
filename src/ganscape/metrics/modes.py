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
- ``js_to_target`` is the Jensen-Shannon divergence (nats) between where the samples fall (each of
  the K modes, or off every mode) and the target (1/K on every mode, nothing off them). It scores
  quality and coverage at once and is always finite: 0 for a perfect generator, log 2 for one with
  no high-quality sample. Studies rank 2-D runs by it.
"""

from __future__ import annotations

import json
import math

import torch

from ganscape.data.base import Mixture
from ganscape.errors import ConfigError
from ganscape.metrics.digit_classifier import METADATA, WEIGHTS_DIR, count_modes, load_digit_classifier

MODE_CLASSIFIERS = {"stacked_digits": "digits", "stacked_mnist": "mnist"}  # data set -> its digit classifier


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
    where = torch.cat([counts, (len(samples) - total)[None]]) / len(samples)  # each mode, then off every mode
    target = torch.cat([torch.full_like(counts, 1 / len(centers)), counts.new_zeros(1)])
    return {
        "modes_covered": covered,
        "num_modes": len(centers),
        "high_quality_pct": 100.0 * float(high_quality.to(torch.float64).mean()),
        "kl_to_uniform": kl,
        "js_to_target": jensen_shannon(where, target),
    }


def jensen_shannon(p: torch.Tensor, q: torch.Tensor) -> float:
    """JS(p, q) = KL(p || m) / 2 + KL(q || m) / 2 with m = (p + q) / 2, in nats (0 log 0 = 0)."""
    m = (p + q) / 2

    def kl(a: torch.Tensor) -> torch.Tensor:
        return (a[a > 0] * (a[a > 0] / m[a > 0]).log()).sum()

    return float((kl(p) + kl(q)) / 2)


def has_modes(data, data_cfg) -> bool:
    """Whether the data set has known modes: a 2-D mixture, or stacked digits with a classifier."""
    return isinstance(data, Mixture) or data_cfg.name in MODE_CLASSIFIERS


def modes_check(evaluator, settings: None) -> None:
    if not has_modes(evaluator.reference, evaluator.reference_cfg):
        raise ConfigError(f"metric 'modes' needs a data set with known modes (2-D mixtures, "
                          f"{', '.join(MODE_CLASSIFIERS)}), not {evaluator.reference_cfg.name}.")


def modes_metric(scoring, settings: None) -> dict[str, float]:
    """The registered metric ``modes``, on ``num_samples`` generated samples."""
    evaluator = scoring.evaluator
    samples = torch.cat(list(scoring.samples(evaluator.num_samples, 1024)))
    if isinstance(evaluator.reference, Mixture):
        return mode_statistics(samples.cpu(), evaluator.reference.centers, evaluator.reference.std)
    classifier = load_digit_classifier(MODE_CLASSIFIERS[evaluator.reference_cfg.name]).to(evaluator.device)
    return count_modes(samples, classifier)


def modes_protocol(evaluator, settings: None) -> dict:
    if isinstance(evaluator.reference, Mixture):
        return {"kind": "2-D mixture", "samples": evaluator.num_samples,
                "rule": "covered: >= 1% of samples within 3 std of the centre"}
    kind = MODE_CLASSIFIERS.get(evaluator.reference_cfg.name)
    if kind is None:
        return {}
    record = json.loads((WEIGHTS_DIR / METADATA).read_text())[kind]
    return {"kind": "stacked digits", "classifier": kind, "classifier_sha256": record["sha256"],
            "classifier_held_out_accuracy": record["held_out_accuracy"], "samples": evaluator.num_samples}
