"""The Dirac-GAN of Mescheder, Geiger and Nowozin (2018), played with ganscape's own losses and penalties.

The generator's distribution is a point mass at theta, the data sit at 0 and the discriminator is
linear, D_psi(x) = psi . x. Here theta and psi lie in R^d: d = 1 is the paper's game, and in d
dimensions every eigenvalue of the one-dimensional game is repeated d times (the game splits into d
identical copies at the equilibrium). A state is one flat float64 vector x = (theta, psi) of length 2d;
the unique equilibrium is x = 0.

Nothing is derived by hand: the players' objectives are the registered ``LOSSES`` and ``PENALTIES``
evaluated on D's logits, exactly as in training (``field.objectives``), and the field is their autograd
gradient. On the Dirac-GAN dD/dx = psi everywhere, so r1 and r2 with weight gamma add (gamma/2)|psi|^2,
the paper's R1 and R2 with its gamma; wgan_gp and dragan with weight lambda add lambda (|psi| - 1)^2,
the paper's WGAN-GP with gamma = 2 lambda.

Two penalties are not terms of an objective:

* ``instance_noise`` with std sigma: the paper analyses the expectation over the noise, so it is taken
  deterministically. D sees the real points sigma e_i and the generated points theta + sigma e_i for
  fixed equal-weight nodes e_i (``noise_nodes``) whose mean is 0 and whose covariance is exactly I. The
  Jacobian at the equilibrium depends on the noise only through that covariance, so it is exact.
* ``wgan_clip`` with bound c: a constraint, psi <- clamp(psi, -c, c) after each D step of an update
  (``DiracGAN.constrain``); it is not part of the field, and inside the box it changes nothing.

Sign convention: ganscape's D scores real data high, the paper's scores generated data high, so psi
here is -psi there. Eigenvalues are unchanged; pictures are the paper's mirrored in psi.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ganscape.config import Experiment, PenaltyConfig
from ganscape.dynamics.field import gradient_field, objectives, requiring_grad
from ganscape.errors import ConfigError, lookup
from ganscape.objectives.losses import LOSSES, Loss
from ganscape.objectives.penalties import PENALTIES
from ganscape.training.loop import Regularizers

Tensor = torch.Tensor

DIRAC_PENALTIES = ("wgan_gp", "dragan", "r1", "r2", "instance_noise", "wgan_clip")
"""Penalties that act on D's inputs, its input gradient or psi; l2 and ortho act on weight matrices."""
NOISE_NODES = 1000  # instance noise: nodes per dimension of the expectation over the noise


@functools.lru_cache(maxsize=8)
def noise_nodes(n: int, dim: int) -> Tensor:
    """``n * dim`` equal-weight nodes of N(0, I_dim), shape (n * dim, dim), with mean 0 and covariance I.

    The midpoint quantiles q_i = Phi^-1((i + 1/2) / n) are symmetric about 0 and rescaled to mean square
    1. In d > 1 dimensions each q_i is placed on each axis, scaled by sqrt(d), which keeps the covariance
    exactly I.
    """
    q = torch.special.ndtri((torch.arange(n, dtype=torch.float64) + 0.5) / n)
    q = q / q.square().mean().sqrt()
    axes = math.sqrt(dim) * torch.eye(dim, dtype=torch.float64)
    return (q[:, None, None] * axes).reshape(n * dim, dim)


def linear_critic(psi: Tensor) -> Callable[..., Tensor]:
    """The discriminator D_psi(x, labels) = psi . x, logits of shape (N,)."""

    def D(x: Tensor, labels: Tensor | None = None) -> Tensor:
        return x.flatten(1) @ psi

    return D


@dataclass(frozen=True)
class DiracGAN:
    """The Dirac-GAN game in ``dim`` dimensions for a loss and the regularizers of a training run."""

    loss: Loss
    reg: Regularizers
    dim: int = 1

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(theta, psi) of a state."""
        return x[:self.dim], x[self.dim:]

    def equilibrium(self) -> Tensor:
        return torch.zeros(2 * self.dim, dtype=torch.float64)

    def batches(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """The real and generated points as D sees them: 0 and theta, or the noise nodes around them."""
        if self.reg.noise_std == 0:
            return theta.new_zeros(1, self.dim), theta[None]
        noise = self.reg.noise_std * noise_nodes(NOISE_NODES, self.dim).to(theta)
        return noise, theta + noise

    def field(self, x: Tensor) -> Tensor:
        """The gradient vector field v(x) of gradient descent on both players, differentiable again."""
        x = requiring_grad(x)
        theta, psi = self.split(x)
        real, fake = self.batches(theta)
        # on the Dirac-GAN dD/dx does not depend on x, so the penalties' random points do not matter
        g_obj, d_obj = objectives(self.loss, self.reg, linear_critic(psi), real, fake,
                                  generator=torch.Generator().manual_seed(0))
        return gradient_field(g_obj, d_obj, [theta], [psi])

    def penalties(self) -> list[tuple[str, float]]:
        """Every regularizer with its weight (the noise std for instance_noise, the bound for wgan_clip)."""
        reg = self.reg
        extra = [("instance_noise", reg.noise_std)] if reg.noise_std > 0 else []
        extra += [("wgan_clip", reg.clip)] if reg.clip > 0 else []
        return [*reg.d_terms, *extra]

    def describe(self) -> str:
        """E.g. "ns + r1 (weight 1)"."""
        return " + ".join([self.loss.name, *(f"{name} (weight {weight:g})" for name, weight in self.penalties())])

    def constrain(self, psi: Tensor) -> Tensor:
        """WGAN weight clipping of psi (what ``clip_weights_`` does to D's parameters), or psi itself."""
        return psi.clamp(-self.reg.clip, self.reg.clip) if self.reg.clip > 0 else psi


def _check_penalties(names: Sequence[str], weights: Sequence[float]) -> None:
    for name in names:
        penalty = lookup(PENALTIES, name, "penalty")
        if name not in DIRAC_PENALTIES:
            raise ConfigError(f"penalty {name!r} ({penalty.description}) acts on weight matrices, which the "
                              f"Dirac-GAN does not have. Penalties on the Dirac-GAN: {', '.join(DIRAC_PENALTIES)}.")
    if len(set(names)) != len(names):
        raise ConfigError(f"a penalty is listed twice: {list(names)}.")
    if weights and len(weights) != len(names):
        raise ConfigError(f"{len(weights)} penalty weights for {len(names)} penalties {list(names)}; give one per "
                          "penalty, or none for the defaults.")
    for weight in weights:
        if not (math.isfinite(weight) and weight > 0):
            raise ConfigError(f"penalty weights must be finite and > 0, got {weight}.")


def dirac_gan(loss: str = "ns", penalties: Sequence[str] = (), weights: Sequence[float] = (),
              dim: int = 1) -> DiracGAN:
    """The Dirac-GAN for a registered loss and penalties, named and weighted as in a run's config.

    ``weights`` gives one weight per penalty (its meaning depends on the penalty's kind: a loss
    weight, the noise std or the clip bound), or none for the registry's defaults. The penalties are
    sorted by kind by ``Regularizers.from_config``, the same code that sets up training.
    """
    lookup(LOSSES, loss, "loss")
    names = [name for name in penalties if name != "none"]
    _check_penalties(names, list(weights))
    if dim < 1:
        raise ConfigError(f"the Dirac-GAN's dimension must be >= 1, got {dim}.")
    cfg = Experiment(loss=loss, penalty=PenaltyConfig(name=names, weight=[float(w) for w in weights]))
    return DiracGAN(LOSSES[loss], Regularizers.from_config(cfg), dim)
