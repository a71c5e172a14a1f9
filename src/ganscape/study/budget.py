"""The GAN Landscape's budget analysis: the best score one can expect from k trials.

Drawing k trials at random (with replacement) from the n observed ones, the best of them is the i-th
best observed score x_(i) (sorted from best to worst) with probability

    P(best of k = x_(i)) = ((n - i + 1)^k - (n - i)^k) / n^k,

the chance that all k draws fall among the n - i + 1 scores no better than x_(i), minus the chance
that they all fall among the n - i worse ones. The expected best is the sum of x_(i) times that
probability, computed exactly. The band around it comes from the bootstrap: the same computation on
resamples of the n scores.

That holds for samplers whose trials are independent draws (random, Sobol, grid). A sequential sampler
(TPE, Gaussian process) chooses each trial from the ones before it, so its trials cannot be resampled: its
budget curve is the best score so far in trial order, with a band over several such sequences (the seeds
of a study, or repeated studies).
"""

from __future__ import annotations

import numpy as np


def expected_best(scores, k: int, minimize: bool = True) -> float:
    """E[best of k draws with replacement from ``scores``], exactly from the order statistics."""
    x = np.sort(np.asarray(scores, dtype=np.float64))
    if not minimize:
        x = x[::-1]
    n = len(x)
    if n == 0:
        raise ValueError("no scores")
    i = np.arange(1, n + 1, dtype=np.float64)
    # ((n - i + 1)^k - (n - i)^k) / n^k, written with ratios so large k does not overflow
    probabilities = ((n - i + 1) / n) ** k - ((n - i) / n) ** k
    finite = probabilities > 0
    return float(np.sum(x[finite] * probabilities[finite]))


def expected_best_curve(scores, ks, minimize: bool = True, bootstrap: int = 1000, level: float = 0.95,
                        seed: int = 0) -> dict:
    """For every k in ``ks``: the expected best and a bootstrap band (``level`` of the resamples' values)."""
    scores = np.asarray(scores, dtype=np.float64)
    rng = np.random.default_rng(seed)
    resamples = rng.choice(scores, size=(bootstrap, len(scores)), replace=True)
    low_q, high_q = (1 - level) / 2, 1 - (1 - level) / 2
    curve = {"k": [], "mean": [], "low": [], "high": []}
    for k in ks:
        boot = np.array([expected_best(sample, k, minimize) for sample in resamples])
        curve["k"].append(int(k))
        curve["mean"].append(expected_best(scores, k, minimize))
        curve["low"].append(float(np.quantile(boot, low_q)))
        curve["high"].append(float(np.quantile(boot, high_q)))
    return curve


def best_so_far(values, minimize: bool = True) -> np.ndarray:
    """The best of the first k values, for every k (trial order). A NaN (a trial left out of the scores)
    keeps the best before it."""
    values = np.asarray(values, dtype=np.float64)
    return (np.fmin if minimize else np.fmax).accumulate(values) if len(values) else values


def best_so_far_band(sequences, minimize: bool = True) -> dict:
    """Each sequence's best so far, then at every k their mean, lowest and highest; the sequences (one per
    seed, or per repeated study) are cut to the shortest, so that every k averages the same ones."""
    if not sequences:
        raise ValueError("no sequences")
    length = min(len(s) for s in sequences)
    curves = np.array([best_so_far(list(s)[:length], minimize) for s in sequences]).reshape(len(sequences), length)
    return {"k": list(range(1, length + 1)), "mean": curves.mean(axis=0).tolist(),
            "low": curves.min(axis=0).tolist(), "high": curves.max(axis=0).tolist()}
