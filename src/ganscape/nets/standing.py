"""Standing statistics (Brock et al., BigGAN): a generator's batch-norm statistics estimated afresh.

A generator sampled in eval mode normalises with the running statistics kept during training, an
exponential average over past weights. BigGAN instead resets them and averages the batch statistics
of many forward passes of the final weights (with the latents it will be sampled with, truncated or
not), which improves samples, most of all under truncation. Here every batch-norm layer's running
mean and variance become the plain averages, over ``passes`` batches, of its batch means and
unbiased batch variances (PyTorch's cumulative average, ``momentum=None``).
"""

from __future__ import annotations

import torch
from torch import nn

from ganscape.errors import ConfigError


@torch.no_grad()
def standing_statistics(G: nn.Module, latents: torch.Tensor, labels: torch.Tensor | None, passes: int) -> int:
    """Re-estimate the running statistics of every batch-norm layer of ``G`` from ``passes`` equal batches of
    ``latents`` (and ``labels`` for a conditional G). ``G`` keeps its mode and momenta; returns the number
    of layers re-estimated."""
    norms = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        raise ConfigError("standing statistics re-estimate batch-norm statistics, and this generator has no "
                          "batch norm (its samples do not depend on any).")
    if passes < 1 or len(latents) < 2 * passes:
        raise ConfigError(f"standing statistics need at least 1 pass of at least 2 latents, not {passes} pass(es) "
                          f"of {len(latents)} latents.")
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: each pass counts the same
    was_training = G.training
    G.train()
    try:
        for z, y in zip(latents.chunk(passes), labels.chunk(passes) if labels is not None else [None] * passes):
            G(z, y)
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        G.train(was_training)
    return len(norms)
