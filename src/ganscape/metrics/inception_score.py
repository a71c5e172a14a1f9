"""Inception Score (Salimans et al. 2016) from classifier logits.

IS = exp(E_x KL(p(y|x) || p(y))), with p(y|x) the Inception softmax of a generated image and p(y)
its marginal over the evaluated set. It is high when each image is confidently classified (low
entropy p(y|x)) and the classes are varied (high entropy p(y)); it ranges from 1 to the number of
classes.

Protocol: the TF Inception graph used by the original code and by TF-GAN has 1008 softmax outputs
(the 1000 ImageNet classes plus 8 unused ones) and the standard score is the softmax over all 1008
logits, so pass all of them. Like the original code, ganscape's evaluation takes the logits as the
pool features times the classifier weight *without* its bias (see ``metrics.features``). The
functions here work for any number of classes. The fake set is cut into 10 splits and the mean and
std of the per-split scores are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


def split_score(log_probs: torch.Tensor) -> float:
    """exp(mean_x KL(p(y|x) || p(y))) for one split, from log p(y|x) (``n x classes``, float64).

    The marginal p(y) is the mean of p(y|x) over this split. Terms with p(y|x) = 0 contribute 0
    (the limit of p log p), which keeps one-hot predictions finite.
    """
    probs = log_probs.exp()
    log_marginal = probs.mean(dim=0).log()
    kl = torch.where(probs > 0, probs * (log_probs - log_marginal), 0).sum(dim=1)
    return float(kl.mean().exp())


def inception_score(logits, splits: int = 10) -> tuple[float, float]:
    """Mean and std of the Inception Score over ``splits`` contiguous splits of ``logits``.

    ``logits`` is ``n x classes`` (1008 for the TF Inception graph). Split i holds rows
    ``i n // splits`` to ``(i + 1) n // splits``, as in the original code, and the std is the
    population one (``np.std``) it reports. Softmax and KL are computed in float64.
    """
    log_probs = torch.log_softmax(torch.as_tensor(logits).detach().to(torch.float64), dim=1)
    n = len(log_probs)
    scores = torch.tensor([split_score(log_probs[i * n // splits:(i + 1) * n // splits])
                           for i in range(splits)], dtype=torch.float64)
    return float(scores.mean()), float(scores.std(correction=0))


@dataclass
class ISSettings:
    """``metrics.is.*``."""

    splits: int = field(default=10, metadata={"min": 1, "max": 1000, "help": "Inception Score: splits"})


def is_metric(scoring, settings: ISSettings) -> dict[str, float]:
    """The registered metric ``is``, from the generated samples' 1008 logits."""
    mean, std = inception_score(scoring.logits, settings.splits)
    return {"is_mean": mean, "is_std": std}


def is_protocol(evaluator, settings: ISSettings) -> dict:
    return {"splits": settings.splits, "logits": 1008}
