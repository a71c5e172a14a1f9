"""The regularizers of the GAN papers as pure functions, and their registry.

A discriminator is called as ``D(x, labels)`` and returns logits of shape ``(N,)``; ``labels`` is None
or an int tensor ``(N,)`` and is always passed along, so conditional discriminators are penalised at
the same labels they are trained with. Every random draw takes a ``torch.Generator`` (on the data's
device) so that a run is reproducible from its seed.

Four kinds of regularizer exist (see ``PENALTIES``): terms added to D's loss (gradient penalties,
weight decay), terms added to G's loss (orthogonal regularization), transforms of D's inputs
(instance noise) and constraints applied to D's weights after each D step (WGAN weight clipping).
The loss terms are returned unweighted; the configured weight multiplies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ganscape.errors import lookup

Tensor = torch.Tensor
Discriminator = Callable[[Tensor, Tensor | None], Tensor]


def _input_gradient(D: Discriminator, x: Tensor, labels: Tensor | None) -> Tensor:
    """dD(x)/dx flattened to ``(N, -1)``, kept differentiable so a penalty on it trains D.

    ``x`` is replaced by a detached leaf so that no graph of the generator (or of the interpolation
    that produced ``x``) is kept alive or receives gradient. Summing the logits before differentiating
    gives every sample's own gradient because the logits of different samples are independent.
    """
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x, labels).sum(), x, create_graph=True)
    return grad.flatten(1)


def gradient_norm(D: Discriminator, x: Tensor, labels: Tensor | None) -> Tensor:
    """Per-sample L2 norm ``||dD(x)/dx||`` of shape ``(N,)``, differentiable wrt D's parameters."""
    return _input_gradient(D, x, labels).norm(dim=1)


def _uniform(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """U[0, 1] draws of ``shape`` on the device and in the dtype of ``like``."""
    return torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype)


def wgan_gp(D: Discriminator, real: Tensor, fake: Tensor, labels: Tensor | None = None,
            generator: torch.Generator | None = None) -> Tensor:
    """WGAN-GP (Gulrajani et al.): E[(||grad D(x_hat)|| - 1)^2] with x_hat = real + alpha (fake - real).

    One alpha ~ U[0, 1] per sample. The optimal critic has unit gradient norm on the lines between
    real and generated points, so the two-sided penalty enforces the 1-Lipschitz constraint softly
    where it matters instead of clipping every weight.
    """
    alpha = _uniform((real.shape[0],) + (1,) * (real.dim() - 1), real, generator)
    x_hat = real + alpha * (fake - real)
    return (gradient_norm(D, x_hat, labels) - 1).square().mean()


def dragan(D: Discriminator, real: Tensor, labels: Tensor | None = None,
           generator: torch.Generator | None = None) -> Tensor:
    """DRAGAN (Kodali et al.) as in the GAN Landscape code: E[(||grad D(x_tilde)|| - 1)^2].

    ``x_tilde = real + std(real) * (u - 0.5)`` with ``u ~ U[0, 1]`` elementwise and ``std`` a single
    scalar over the whole real batch (population std). Penalising steep gradients in a neighbourhood
    of the data discourages the sharp local optima of D that cause mode collapse.

    The Landscape code then clips ``x_tilde`` to [0, 1] because its images live there; here data live
    in [-1, 1] or are unbounded 2-D points, so ``x_tilde`` is deliberately not clipped.
    """
    u = _uniform(tuple(real.shape), real, generator)
    x_tilde = real + real.std(correction=0) * (u - 0.5)
    return (gradient_norm(D, x_tilde, labels) - 1).square().mean()


def r1(D: Discriminator, real: Tensor, labels: Tensor | None = None) -> Tensor:
    """R1 (Mescheder et al.): the zero-centred penalty on real data, 1/2 E_P[||grad D(x)||^2].

    A weight gamma gives the paper's (gamma / 2) E||grad D||^2, which makes the Dirac-GAN
    equilibrium locally convergent: at the equilibrium D is flat on the data, so D is pushed back
    to flat instead of oscillating around it. The squared norm is taken directly (no square root),
    which is exact and smooth where the gradient vanishes.

    GAN_stability's code computes ``reg_param * E||grad||^2`` without the 1/2, so its
    ``reg_param = 10`` equals weight 20 here.
    """
    return 0.5 * _input_gradient(D, real, labels).square().sum(dim=1).mean()


def r2(D: Discriminator, fake: Tensor, labels: Tensor | None = None) -> Tensor:
    """R2 (Mescheder et al.): R1 on generated data, 1/2 E_Q[||grad D(G(z))||^2].

    ``fake`` is detached from G's graph: the penalty regularizes D only.
    """
    return r1(D, fake, labels)


def _weight_tensors(module: nn.Module) -> list[Tensor]:
    """Linear and conv kernels: parameters with ``ndim >= 2``, except those of ``nn.Embedding``
    modules (class embeddings); no biases or normalization gains."""
    embedded = {id(p) for m in module.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    return [p for p in module.parameters() if p.dim() >= 2 and id(p) not in embedded]


def l2(D: nn.Module) -> Tensor:
    """Weight decay as in the Landscape code: the mean over D's weight tensors of ||W||^2 / 2.

    Only linear and conv kernels count (8 in SNDCGAN's D, 13 in ResNet-CIFAR's, 19 in ResNet19's);
    biases, normalization gains and a projection discriminator's class embedding are not decayed.
    """
    return torch.stack([0.5 * w.square().sum() for w in _weight_tensors(D)]).mean()


def _off_diagonal_gram(weight: Tensor) -> Tensor:
    """||W W^T ⊙ (1 - I)||_F^2 with W the weight reshaped to one row per output filter."""
    w = weight.reshape(weight.shape[0], -1)
    gram = w @ w.T
    return (gram * (1 - torch.eye(gram.shape[0], device=gram.device, dtype=gram.dtype))).square().sum()


def orthogonal(G: nn.Module) -> Tensor:
    """BigGAN's orthogonal regularization without its beta: sum_W ||W W^T ⊙ (1 - I)||_F^2.

    Each weight tensor (``ndim >= 2``) is reshaped to ``(shape[0], -1)``, one row per output filter.
    Only the off-diagonal Gram entries (dot products of different filters) are penalised: this pushes
    filters towards mutual orthogonality without pinning their norms to 1 as the full
    ``||W W^T - I||^2`` does, which Brock et al. found keeps G amenable to the truncation trick
    without over-constraining it. Parameters of ``nn.Embedding`` modules (class embeddings) are
    excluded, as in BigGAN.

    BigGAN-PyTorch adds the hand-written gradient ``beta * 2 (W W^T ⊙ (1 - I)) W``; the gradient of
    this loss is ``4 (W W^T ⊙ (1 - I)) W``, so their update equals beta / 2 times this loss.
    """
    return torch.stack([_off_diagonal_gram(w) for w in _weight_tensors(G)]).sum()


def add_instance_noise(x: Tensor, std: float, generator: torch.Generator | None) -> Tensor:
    """Instance noise (Sønderby et al., Arjovsky & Bottou): ``x + std * N(0, I)``.

    Applied to both real and generated inputs of D, it makes the two distributions overlap so D
    cannot separate them perfectly and its gradients stay informative. A transform, not a loss term.
    """
    return x + std * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def instance_noise_std(std: float, step: int, anneal_steps: int) -> float:
    """The noise std at ``step``: constant if ``anneal_steps == 0``, else linear from ``std`` at step 0
    to 0 at ``anneal_steps``, and 0 afterwards (the noise is only needed while the distributions are
    far apart)."""
    if anneal_steps == 0:
        return std
    return std * max(0.0, 1.0 - step / anneal_steps)


def clip_weights_(D: nn.Module, bound: float) -> None:
    """The original WGAN's Lipschitz constraint: clamp every parameter of D to [-bound, bound] in place."""
    with torch.no_grad():
        for param in D.parameters():
            param.clamp_(-bound, bound)


@dataclass(frozen=True)
class Penalty:
    """A regularizer and how the training loop applies it.

    ``kind`` is "d_loss" (term added to D's loss), "g_loss" (term added to G's loss), "d_input"
    (transform of D's real and fake inputs) or "d_constraint" (applied to D's weights after each D
    step). ``weight_meaning`` says what the configured weight is for it: "lambda" (loss weight),
    "noise std" or "clip bound".
    """

    name: str
    kind: str
    default_weight: float
    weight_meaning: str
    description: str


PENALTIES: dict[str, Penalty] = {
    "wgan_gp": Penalty("wgan_gp", "d_loss", 10.0, "lambda", "WGAN-GP two-sided gradient penalty on interpolates"),
    "dragan": Penalty("dragan", "d_loss", 10.0, "lambda", "DRAGAN gradient penalty around perturbed real data"),
    "r1": Penalty("r1", "d_loss", 10.0, "lambda", "R1 zero-centred gradient penalty on real data (gamma)"),
    "r2": Penalty("r2", "d_loss", 10.0, "lambda", "R2 zero-centred gradient penalty on generated data"),
    "l2": Penalty("l2", "d_loss", 0.01, "lambda", "weight decay on D's weight tensors"),
    "ortho": Penalty("ortho", "g_loss", 1e-4, "lambda", "BigGAN orthogonal regularization of G's weights"),
    "instance_noise": Penalty("instance_noise", "d_input", 0.1, "noise std", "Gaussian noise on D's inputs"),
    "wgan_clip": Penalty("wgan_clip", "d_constraint", 0.01, "clip bound", "WGAN weight clipping of D"),
}

_D_TERMS: dict[str, Callable[..., Tensor]] = {
    "wgan_gp": lambda D, real, fake, labels, generator: wgan_gp(D, real, fake, labels, generator),
    "dragan": lambda D, real, fake, labels, generator: dragan(D, real, labels, generator),
    "r1": lambda D, real, fake, labels, generator: r1(D, real, labels),
    "r2": lambda D, real, fake, labels, generator: r2(D, fake, labels),
    "l2": lambda D, real, fake, labels, generator: l2(D),
}

_G_TERMS: dict[str, Callable[[nn.Module], Tensor]] = {"ortho": orthogonal}


def _term(terms: dict[str, Callable[..., Tensor]], name: str, kind: str) -> Callable[..., Tensor]:
    penalty = lookup(PENALTIES, name, "penalty")
    if penalty.kind != kind:
        raise ValueError(f"penalty {name!r} is of kind {penalty.kind!r}, not {kind!r}")
    return terms[name]


def d_penalty(name: str, D: nn.Module, real: Tensor, fake: Tensor, labels: Tensor | None,
              generator: torch.Generator | None) -> Tensor:
    """The unweighted D loss term of penalty ``name`` (a ``"d_loss"`` kind)."""
    return _term(_D_TERMS, name, "d_loss")(D, real, fake, labels, generator)


def g_penalty(name: str, G: nn.Module) -> Tensor:
    """The unweighted G loss term of penalty ``name`` (a ``"g_loss"`` kind)."""
    return _term(_G_TERMS, name, "g_loss")(G)
