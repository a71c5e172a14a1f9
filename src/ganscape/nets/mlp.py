"""Multi-layer perceptrons for low-dimensional data such as the 2-D mixtures."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ganscape.nets.layers import Normalization


def _hidden_stack(in_features: int, width: int, depth: int, norm: Normalization,
                  activation: Callable[[], nn.Module]) -> list[nn.Module]:
    """``depth`` blocks of weight layer, feature normalization and activation, all chosen by ``norm``."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [norm.linear(in_features if i == 0 else width, width), norm.feature_norm(width, 0),
                   norm.activation(width, activation)]
    return layers


class MLPGenerator(nn.Module):
    """G(z) = Linear(ReLU(norm(Linear(...)))) mapping a latent vector to a flat sample."""

    def __init__(self, latent_dim: int, out_shape: tuple[int, ...], width: int, depth: int, norm: Normalization):
        super().__init__()
        self.out_shape = tuple(out_shape)
        hidden = _hidden_stack(latent_dim, width, depth, norm, nn.ReLU)
        self.net = nn.Sequential(*hidden, norm.linear(width, math.prod(self.out_shape), last=True))

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(len(z), *self.out_shape)


class MLPDiscriminator(nn.Module):
    """D(x): flattened input, LeakyReLU(0.2) hidden layers, one logit per sample."""

    def __init__(self, in_shape: tuple[int, ...], width: int, depth: int, norm: Normalization):
        super().__init__()
        hidden = _hidden_stack(math.prod(in_shape), width, depth, norm, lambda: nn.LeakyReLU(0.2))
        self.net = nn.Sequential(*hidden, norm.linear(width, 1, last=True))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(1)
