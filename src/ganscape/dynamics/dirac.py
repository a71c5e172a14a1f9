"""The Dirac-GAN of Mescheder, Geiger and Nowozin (2018), played with ganscape's own losses and penalties.

The generator's distribution is a point mass at theta, the data sit at 0 and the discriminator is
linear, D_psi(x) = psi . x. Here theta and psi lie in R^d: d = 1 is the paper's game, and in d
dimensions every eigenvalue of the one-dimensional game is repeated d times (the game splits into d
identical copies at the equilibrium). A state is one flat float64 vector x = (theta, psi) of length 2d;
the unique equilibrium is x = 0.

Nothing is derived by hand: the players' objectives are the registered ``LOSSES`` and ``PENALTIES``
evaluated on D's logits by ``Objective``, exactly as in training (``field.game_totals``), and the field
is their autograd gradient. On the Dirac-GAN dD/dx = psi everywhere, so r1 and r2 with weight gamma add (gamma/2)|psi|^2,
the paper's R1 and R2 with its gamma; wgan_gp and dragan with weight lambda add lambda (|psi| - 1)^2,
the paper's WGAN-GP with gamma = 2 lambda.

Two penalties are not terms of an objective:

* ``instance_noise`` with std sigma (``DiracGAN.noise``; a stage of the D-input pipeline in a run, not a
  term of ``Objective``): the paper analyses the expectation over the noise, so it is taken
  deterministically. D sees the real points sigma e_i and the generated points theta + sigma e_i for
  fixed equal-weight nodes e_i (``noise_nodes``) whose mean is 0 and whose covariance is exactly I. The
  Jacobian at the equilibrium depends on the noise only through that covariance, so it is exact.
* ``wgan_clip`` with bound c: a constraint, psi <- clamp(psi, -c, c) after each D step of an update
  (``DiracGAN.constrain``, what ``clip_weights_`` does to a network's parameters); it is not part of
  the field, and inside the box it changes nothing.

Which penalties the Dirac-GAN can play is a fact of each registry entry (``Penalty.dirac``).

Sign convention: ganscape's D scores real data high, the paper's scores generated data high, so psi
here is -psi there. Eigenvalues are unchanged; pictures are the paper's mirrored in psi.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import torch

from ganscape.dynamics.field import game_totals, gradient_field, requiring_grad
from ganscape.errors import ConfigError, lookup
from ganscape.objectives.losses import LOSSES
from ganscape.objectives.objective import Objective
from ganscape.objectives.penalties import PENALTIES

Tensor = torch.Tensor

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
    """The Dirac-GAN game in ``dim`` dimensions for the objective of a training run, with instance noise of
    std ``noise`` on D's inputs (0: none)."""

    objective: Objective
    dim: int = 1
    noise: float = 0.0

    @property
    def loss(self):
        return self.objective.loss

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(theta, psi) of a state."""
        return x[:self.dim], x[self.dim:]

    def equilibrium(self) -> Tensor:
        return torch.zeros(2 * self.dim, dtype=torch.float64)

    def batches(self, theta: Tensor) -> tuple[Tensor, Tensor]:
        """The real and generated points as D sees them: 0 and theta, or the noise nodes around them."""
        if self.noise == 0:
            return theta.new_zeros(1, self.dim), theta[None]
        noise = self.noise * noise_nodes(NOISE_NODES, self.dim).to(theta)
        return noise, theta + noise

    def field(self, x: Tensor) -> Tensor:
        """The gradient vector field v(x) of gradient descent on both players, differentiable again."""
        x = requiring_grad(x)
        theta, psi = self.split(x)
        real, fake = self.batches(theta)
        # on the Dirac-GAN dD/dx does not depend on x, so the penalties' random points do not matter
        g_obj, d_obj = game_totals(self.objective, linear_critic(psi), real, fake,
                                   generator=torch.Generator().manual_seed(0))
        return gradient_field(g_obj, d_obj, [theta], [psi])

    def penalties(self) -> list[tuple[str, float]]:
        """Every regularizer with its weight (the noise std for instance_noise, the bound for wgan_clip)."""
        noise = [("instance_noise", self.noise)] if self.noise else []
        return [(penalty.name, weight) for penalty, weight in self.objective.penalties] + noise

    def describe(self) -> str:
        """E.g. "ns + r1 (weight 1)"."""
        noise = f" + instance_noise (weight {self.noise:g})" if self.noise else ""
        return self.objective.describe() + noise

    def constrain(self, psi: Tensor) -> Tensor:
        """WGAN weight clipping of psi (what ``clip_weights_`` does to D's parameters), or psi itself."""
        bound = self.objective.weight("wgan_clip")
        return psi.clamp(-bound, bound) if bound > 0 else psi


def dirac_gan(loss: str = "ns", penalties: str | Mapping[str, float] | Sequence = "", dim: int = 1) -> DiracGAN:
    """The Dirac-GAN for a registered loss and penalties, written as in a run's config.

    ``penalties``: ``"r1:0.3,instance_noise"`` (a name alone takes the registry's default weight), a
    list of such items, or ``{"r1": 0.3}``. A weight is a loss weight, the noise std or the clip
    bound, by the penalty's kind. Penalties that act on weight matrices are refused.
    """
    from ganscape.config import parse_penalties

    lookup(LOSSES, loss, "loss")
    terms = parse_penalties(penalties, "penalty")
    for term in terms:
        penalty = PENALTIES[term.name]
        if not penalty.dirac:
            playable = ", ".join(n for n, p in PENALTIES.items() if p.dirac)
            raise ConfigError(f"penalty {term.name!r} ({penalty.description}) acts on weight matrices, which the "
                              f"Dirac-GAN does not have. Penalties on the Dirac-GAN: {playable}.")
        if not (math.isfinite(term.weight) and term.weight > 0):
            raise ConfigError(f"penalty weights must be finite and > 0, got {term.name}:{term.weight}.")
    names = [term.name for term in terms]
    if len(set(names)) != len(names):
        raise ConfigError(f"a penalty is listed twice: {', '.join(names)}.")
    if dim < 1:
        raise ConfigError(f"the Dirac-GAN's dimension must be >= 1, got {dim}.")
    weights = {term.name: term.weight for term in terms}
    noise = weights.pop("instance_noise", 0.0)  # D's input transform, not a term of the objective
    return DiracGAN(Objective.of(loss, weights), dim, noise)
