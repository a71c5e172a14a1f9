"""GAN losses as pure functions of discriminator logits.

Every loss is a pair ``d_loss(real_logits, fake_logits)`` (minimised by D) and ``g_loss(fake_logits)``
(minimised by G), both returning a scalar batch mean. Logits are the raw, unbounded outputs of D;
binary cross-entropy is written with ``softplus`` so that no loss overflows for large logits:
``-log(sigmoid(t)) = softplus(-t)`` and ``-log(1 - sigmoid(t)) = softplus(t)``.

The formulas follow the GAN Landscape study (Kurach et al.), see ``LOSSES`` for the registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def bce_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """D's binary cross-entropy: E_P[-log sigma(D(x))] + E_Q[-log(1 - sigma(D(G(z))))]."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def minimax_g_loss(fake_logits: Tensor) -> Tensor:
    """The original saturating generator loss: E_Q[log(1 - sigma(D(G(z))))]."""
    return -F.softplus(fake_logits).mean()


def ns_g_loss(fake_logits: Tensor) -> Tensor:
    """The non-saturating generator loss: E_Q[-log sigma(D(G(z)))]."""
    return F.softplus(-fake_logits).mean()


def wgan_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """The critic's Wasserstein loss: -E_P[D(x)] + E_Q[D(G(z))]."""
    return fake_logits.mean() - real_logits.mean()


def wgan_g_loss(fake_logits: Tensor) -> Tensor:
    """The generator's Wasserstein (and hinge) loss: -E_Q[D(G(z))]."""
    return -fake_logits.mean()


def ls_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Least squares on the sigmoid output, as in the Landscape code:
    1/2 E_P[(sigma(D(x)) - 1)^2] + 1/2 E_Q[sigma(D(G(z)))^2]."""
    real = torch.sigmoid(real_logits)
    fake = torch.sigmoid(fake_logits)
    return 0.5 * (real - 1).square().mean() + 0.5 * fake.square().mean()


def ls_g_loss(fake_logits: Tensor) -> Tensor:
    """1/2 E_Q[(sigma(D(G(z))) - 1)^2]."""
    return 0.5 * (torch.sigmoid(fake_logits) - 1).square().mean()


def hinge_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E_P[relu(1 - D(x))] + E_Q[relu(1 + D(G(z)))]."""
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


@dataclass(frozen=True)
class Loss:
    """A GAN loss: the discriminator's and the generator's objective, both minimised."""

    name: str
    d_loss: Callable[[Tensor, Tensor], Tensor]
    g_loss: Callable[[Tensor], Tensor]
    description: str


LOSSES: dict[str, Loss] = {
    "minimax": Loss("minimax", bce_d_loss, minimax_g_loss, "original saturating GAN (Goodfellow et al.)"),
    "ns": Loss("ns", bce_d_loss, ns_g_loss, "non-saturating GAN"),
    "wgan": Loss("wgan", wgan_d_loss, wgan_g_loss, "Wasserstein GAN (needs a Lipschitz constraint)"),
    "ls": Loss("ls", ls_d_loss, ls_g_loss, "least squares on sigmoid(D), as in the Landscape study"),
    "hinge": Loss("hinge", hinge_d_loss, wgan_g_loss, "hinge loss (SA-GAN, BigGAN)"),
}
