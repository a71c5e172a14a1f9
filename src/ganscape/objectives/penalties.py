"""The regularizers of the GAN papers as pure functions, and their registry.

A discriminator is called as ``D(x, labels)`` and returns logits of shape ``(N,)``; ``labels`` is None
or an int tensor ``(N,)`` and is always passed along, so conditional discriminators are penalised at
the same labels they are trained with. Every random draw takes a ``torch.Generator`` (on the data's
device) so that a run is reproducible from its seed.

Four kinds of regularizer exist (``Penalty.kind``): terms added to D's loss (gradient penalties,
weight decay), terms added to G's loss (orthogonal regularization), transforms of D's inputs
(instance noise) and constraints applied to D's weights after each D step (WGAN weight clipping).
Instance noise is registered here for the Dirac-GAN, which plays it as a regularizer; in a run it is a
stage of the D-input pipeline (``augment.noise``, ``ganscape.objectives.d_input``), not of ``Objective``.
The loss terms are returned unweighted; the configured weight multiplies them
(``ganscape.objectives.objective``).

Gradient penalties are measured on a pixel scale (``PIXEL_SCALES``): the data's own (images in
[-1, 1], as D sees them and as GAN_stability measures R1), or [0, 1] as the GAN Landscape's code
(compare_gan) does, where images are x01 = (x + 1) / 2 and the gradient is taken with respect to x01.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ganscape.objectives.d_input import DEFAULT_NOISE_STD, add_instance_noise

Tensor = torch.Tensor
Discriminator = Callable[[Tensor, Tensor | None], Tensor]


# --------------------------------------------------------------------------------------------------
# Pixel scales of the gradient penalties


@dataclass(frozen=True)
class PixelScale:
    """Where a gradient penalty measures D's input gradient.

    ``to_penalty`` maps what D sees to the penalty's coordinates u, ``to_data`` maps them back, and
    ``bounds`` is the range of valid pixels in u (DRAGAN's perturbed points are clipped to it), or
    None where data are unbounded. The gradient is d D(to_data(u)) / du.
    """

    name: str
    description: str
    to_penalty: Callable[[Tensor], Tensor]
    to_data: Callable[[Tensor], Tensor]
    bounds: tuple[float, float] | None


def _identity(x: Tensor) -> Tensor:
    return x


PIXEL_SCALES: dict[str, PixelScale] = {
    "data": PixelScale("data", "the data as D sees them (images in [-1, 1]; GAN_stability's R1)",
                       _identity, _identity, None),
    "unit": PixelScale("unit", "images as x01 = (x + 1) / 2 in [0, 1] (the GAN Landscape's compare_gan)",
                       lambda x: (x + 1) / 2, lambda u: 2 * u - 1, (0.0, 1.0)),
}
DATA_SCALE = PIXEL_SCALES["data"]


# --------------------------------------------------------------------------------------------------
# Gradient penalties


def input_gradient(D: Discriminator, x: Tensor, labels: Tensor | None, scale: PixelScale = DATA_SCALE) -> Tensor:
    """dD/du at u = ``scale.to_penalty(x)``, flattened to ``(N, -1)``, differentiable wrt D's parameters.

    u is a detached leaf, so no graph of the generator (or of the interpolation that produced ``x``)
    is kept alive or receives gradient. Summing the logits before differentiating gives every
    sample's own gradient because the logits of different samples are independent.
    """
    u = scale.to_penalty(x.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(scale.to_data(u), labels).sum(), u, create_graph=True)
    return grad.flatten(1)


def gradient_norm(D: Discriminator, x: Tensor, labels: Tensor | None, scale: PixelScale = DATA_SCALE) -> Tensor:
    """Per-sample L2 norm ``||dD/du||`` of shape ``(N,)`` (see ``input_gradient``)."""
    return input_gradient(D, x, labels, scale).norm(dim=1)


def _uniform(shape: tuple[int, ...], like: Tensor, generator: torch.Generator | None) -> Tensor:
    """U[0, 1] draws of ``shape`` on the device and in the dtype of ``like``."""
    return torch.rand(shape, generator=generator, device=like.device, dtype=like.dtype)


def wgan_gp(D: Discriminator, real: Tensor, fake: Tensor, labels: Tensor | None = None,
            generator: torch.Generator | None = None, scale: PixelScale = DATA_SCALE) -> Tensor:
    """WGAN-GP (Gulrajani et al.): E[(||grad D(x_hat)|| - 1)^2] with x_hat = real + alpha (fake - real).

    One alpha ~ U[0, 1] per sample. The optimal critic has unit gradient norm on the lines between
    real and generated points, so the two-sided penalty enforces the 1-Lipschitz constraint softly
    where it matters instead of clipping every weight. The interpolates are the same on either
    pixel scale (the map between them is affine); the gradient is measured on ``scale``.
    """
    alpha = _uniform((real.shape[0],) + (1,) * (real.dim() - 1), real, generator)
    x_hat = real + alpha * (fake - real)
    return (gradient_norm(D, x_hat, labels, scale) - 1).square().mean()


def dragan(D: Discriminator, real: Tensor, labels: Tensor | None = None,
           generator: torch.Generator | None = None, scale: PixelScale = DATA_SCALE) -> Tensor:
    """DRAGAN (Kodali et al.) as in the GAN Landscape code: E[(||grad D(x_tilde)|| - 1)^2].

    On the penalty's scale u, ``u_tilde = u + std(u) * (noise - 0.5)`` with ``noise ~ U[0, 1]``
    elementwise and ``std`` a single scalar over the whole real batch (population std), clipped to
    the scale's bounds: [0, 1] on the unit scale, as compare_gan clips; not at all on the data scale,
    where 2-D points are unbounded. Penalising steep gradients in a neighbourhood of the data
    discourages the sharp local optima of D that cause mode collapse.
    """
    u = scale.to_penalty(real)
    noise = _uniform(tuple(real.shape), real, generator)
    u_tilde = u + u.std(correction=0) * (noise - 0.5)
    if scale.bounds is not None:
        u_tilde = u_tilde.clamp(*scale.bounds)
    return (gradient_norm(D, scale.to_data(u_tilde), labels, scale) - 1).square().mean()


def r1(D: Discriminator, real: Tensor, labels: Tensor | None = None, scale: PixelScale = DATA_SCALE) -> Tensor:
    """R1 (Mescheder et al.): the zero-centred penalty on real data, 1/2 E_P[||grad D(x)||^2].

    A weight gamma gives the paper's (gamma / 2) E||grad D||^2, which makes the Dirac-GAN
    equilibrium locally convergent: at the equilibrium D is flat on the data, so D is pushed back
    to flat instead of oscillating around it. The squared norm is taken directly (no square root),
    which is exact and smooth where the gradient vanishes.

    GAN_stability's code computes ``reg_param * E||grad||^2`` without the 1/2, on the data scale, so
    its ``reg_param = 10`` equals weight 20 here.
    """
    return 0.5 * input_gradient(D, real, labels, scale).square().sum(dim=1).mean()


def r2(D: Discriminator, fake: Tensor, labels: Tensor | None = None, scale: PixelScale = DATA_SCALE) -> Tensor:
    """R2 (Mescheder et al.): R1 on generated data, 1/2 E_Q[||grad D(G(z))||^2].

    ``fake`` is detached from G's graph: the penalty regularizes D only.
    """
    return r1(D, fake, labels, scale)


# --------------------------------------------------------------------------------------------------
# Weight penalties and constraints


def weight_tensors(module: nn.Module) -> list[Tensor]:
    """Linear and conv kernels: parameters with ``ndim >= 2``, except those of ``nn.Embedding``
    modules (class embeddings); no biases or normalization gains."""
    embedded = {id(p) for m in module.modules() if isinstance(m, nn.Embedding) for p in m.parameters()}
    return [p for p in module.parameters() if p.dim() >= 2 and id(p) not in embedded]


def l2(D: nn.Module) -> Tensor:
    """Weight decay as in the Landscape code: the mean over D's weight tensors of ||W||^2 / 2.

    Only linear and conv kernels count (8 in SNDCGAN's D, 13 in ResNet-CIFAR's, 19 in ResNet19's);
    biases, normalization gains and a projection discriminator's class embedding are not decayed.
    """
    return torch.stack([0.5 * w.square().sum() for w in weight_tensors(D)]).mean()


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
    excluded: BigGAN-PyTorch excludes its shared embedding ``G.shared`` and notes that every embedding
    should be; with a shared embedding (the ImageNet settings) that is the same set, and without one
    (the CIFAR script, which sets no orthogonal regularization) the per-class batch-norm gains and
    biases are left out here and regularised there. Spectrally normalised layers are regularised
    through their raw weight, as there.

    BigGAN-PyTorch adds the hand-written gradient ``beta * 2 (W W^T ⊙ (1 - I)) W``; the gradient of
    this loss is ``4 (W W^T ⊙ (1 - I)) W``, so their update equals beta / 2 times this loss.
    """
    return torch.stack([_off_diagonal_gram(w) for w in weight_tensors(G)]).sum()


def clip_weights_(D: nn.Module, bound: float) -> None:
    """The original WGAN's Lipschitz constraint: clamp every parameter of D to [-bound, bound] in place."""
    with torch.no_grad():
        for param in D.parameters():
            param.clamp_(-bound, bound)


# --------------------------------------------------------------------------------------------------
# The registry


@dataclass(frozen=True)
class PenaltyInputs:
    """What a loss-term penalty may read at one step.

    ``real`` and ``fake`` are the batches exactly as D sees them (after the D-input pipeline); ``fake``
    may still carry G's graph (the penalties detach it). In G's step ``real`` is None.
    """

    D: Discriminator
    G: nn.Module | None
    real: Tensor | None
    fake: Tensor | None
    labels: Tensor | None
    generator: torch.Generator | None
    scale: PixelScale = DATA_SCALE


D_LOSS, G_LOSS, D_INPUT, D_CONSTRAINT = "d_loss", "g_loss", "d_input", "d_constraint"
KINDS = {
    D_LOSS: "a term added to D's loss: apply(PenaltyInputs) -> unweighted scalar",
    G_LOSS: "a term added to G's loss: apply(PenaltyInputs) -> unweighted scalar",
    D_INPUT: "a transform of D's real and generated inputs: apply(x, strength, generator) -> x (in a run: the "
             "D-input pipeline's, see objectives.d_input)",
    D_CONSTRAINT: "a constraint on D's weights after each D step: apply(D, bound), in place",
}


@dataclass(frozen=True)
class Penalty:
    """A regularizer: its function, how it acts, and the facts other code asks about it.

    ``apply``'s signature depends on ``kind`` (see ``KINDS``). ``weight_meaning`` says what the
    configured weight is: a loss weight ("lambda"), the noise std or the clip bound.
    ``gradient_penalty``: it differentiates D with respect to its input (so it is measured on a
    pixel scale, and batch norm in D spoils it). ``lipschitz``: it constrains D's Lipschitz
    constant (what the wgan loss needs). ``dirac``: the Dirac-GAN, whose D is a single vector psi,
    can play it (weight penalties need weight matrices). ``lazy``: a run may compute it only on every
    k-th D update with k times its weight (``penalty.lazy_interval``, StyleGAN2's lazy regularization);
    only the zero-centred gradient penalties are, since they draw no random numbers and skipping them
    shifts no random stream.
    """

    name: str
    kind: str
    apply: Callable
    default_weight: float
    weight_meaning: str
    description: str
    gradient_penalty: bool = False
    lipschitz: bool = False
    dirac: bool = True
    lazy: bool = False


PENALTIES: dict[str, Penalty] = {p.name: p for p in [
    Penalty("wgan_gp", D_LOSS, lambda i: wgan_gp(i.D, i.real, i.fake, i.labels, i.generator, i.scale),
            10.0, "lambda", "WGAN-GP two-sided gradient penalty on interpolates", gradient_penalty=True,
            lipschitz=True),
    Penalty("dragan", D_LOSS, lambda i: dragan(i.D, i.real, i.labels, i.generator, i.scale),
            10.0, "lambda", "DRAGAN gradient penalty around perturbed real data", gradient_penalty=True,
            lipschitz=True),
    Penalty("r1", D_LOSS, lambda i: r1(i.D, i.real, i.labels, i.scale),
            10.0, "lambda", "R1 zero-centred gradient penalty on real data (gamma)", gradient_penalty=True,
            lazy=True),
    Penalty("r2", D_LOSS, lambda i: r2(i.D, i.fake, i.labels, i.scale),
            10.0, "lambda", "R2 zero-centred gradient penalty on generated data", gradient_penalty=True,
            lazy=True),
    Penalty("l2", D_LOSS, lambda i: l2(i.D), 0.01, "lambda", "weight decay on D's weight tensors", dirac=False),
    Penalty("ortho", G_LOSS, lambda i: orthogonal(i.G), 1e-4, "lambda",
            "BigGAN orthogonal regularization of G's weights", dirac=False),
    Penalty("instance_noise", D_INPUT, add_instance_noise, DEFAULT_NOISE_STD, "noise std",
            "Gaussian noise on D's inputs (in a run's config: augment.noise)"),
    Penalty("wgan_clip", D_CONSTRAINT, clip_weights_, 0.01, "clip bound", "WGAN weight clipping of D",
            lipschitz=True),
]}
