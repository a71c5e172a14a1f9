"""Generators G(z, y) -> samples and discriminators D(x, y) -> logits of shape (N,).

``ARCHITECTURES`` maps a name to the functions that build its generator and discriminator from a
network config, the latent size and what the data set looks like.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ganscape.errors import lookup
from ganscape.nets.layers import NORMS
from ganscape.nets.mlp import MLPDiscriminator, MLPGenerator


@dataclass(frozen=True)
class Architecture:
    generator: Callable[..., nn.Module]  # (net_cfg, latent_dim, data) -> G
    discriminator: Callable[..., nn.Module]  # (net_cfg, data) -> D


def _mlp_generator(cfg, latent_dim, data):
    return MLPGenerator(latent_dim, data.shape, cfg.width, cfg.depth, lookup(NORMS, cfg.norm, "normalization"))


def _mlp_discriminator(cfg, data):
    return MLPDiscriminator(data.shape, cfg.width, cfg.depth, lookup(NORMS, cfg.norm, "normalization"))


ARCHITECTURES: dict[str, Architecture] = {"mlp": Architecture(_mlp_generator, _mlp_discriminator)}


def build_generator(cfg, data) -> nn.Module:
    """The generator described by ``cfg.g`` for data set ``data``."""
    return lookup(ARCHITECTURES, cfg.g.arch, "architecture").generator(cfg.g, cfg.latent.dim, data)


def build_discriminator(cfg, data) -> nn.Module:
    """The discriminator described by ``cfg.d`` for data set ``data``."""
    return lookup(ARCHITECTURES, cfg.d.arch, "architecture").discriminator(cfg.d, data)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def sample_latent(n: int, dim: int, dist: str, generator: torch.Generator, device) -> torch.Tensor:
    """Latent vectors z ~ N(0, I) ("normal") or U(-1, 1) ("uniform"), drawn from ``generator``."""
    if dist == "normal":
        return torch.randn(n, dim, generator=generator, device=device)
    if dist == "uniform":
        return torch.rand(n, dim, generator=generator, device=device) * 2 - 1
    raise ValueError(f"unknown latent distribution {dist!r}")
