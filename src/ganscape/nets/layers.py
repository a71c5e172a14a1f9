"""Building blocks shared by every architecture, chosen by name when a network is built.

A normalization is a ``Normalization``: how to make a weight layer (plain, or reparametrised such as
spectral or weight normalization) and which feature normalization follows it (batch, layer...).
Architectures ask ``NORMS[name]`` for their layers and never branch on global state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn


def identity_feature_norm(num_features: int) -> nn.Module:
    return nn.Identity()


@dataclass(frozen=True)
class Normalization:
    name: str
    linear: Callable[..., nn.Module]  # (in_features, out_features, bias=True) -> layer
    feature_norm: Callable[[int], nn.Module]  # (num_features) -> normalization after a layer
    description: str


NORMS: dict[str, Normalization] = {
    "none": Normalization("none", nn.Linear, identity_feature_norm, "no normalization"),
}
