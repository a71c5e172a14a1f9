"""Optimizers, registered by name; each builds a torch optimizer from an ``OptimConfig``."""

from __future__ import annotations

import torch


def adam(params, cfg) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)


def rmsprop(params, cfg) -> torch.optim.Optimizer:
    """RMSProp with smoothing ``alpha`` (the betas are not used)."""
    return torch.optim.RMSprop(params, lr=cfg.lr, alpha=cfg.alpha, eps=cfg.eps)


OPTIMIZERS = {"adam": adam, "rmsprop": rmsprop}


def hyperparameters(cfg) -> dict:
    """The settings an optimizer built from ``cfg`` gives each parameter group (lr, betas, eps, ...): what a
    branched run writes over the optimizer state it inherits, whose moments it keeps."""
    group = OPTIMIZERS[cfg.name]([torch.zeros(1, requires_grad=True)], cfg).param_groups[0]
    return {key: value for key, value in group.items() if key != "params"}
