"""Generators G(z, y) -> samples and discriminators D(x, y) -> logits of shape (N,).

``ARCHITECTURES`` maps a name to the functions that build its generator and discriminator from a
network config and a ``ModelSpec`` (sample shape, classes, latent): never from a data set, so a
trained generator can be built where its data do not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ganscape.errors import lookup
from ganscape.nets import biggan, dcgan, gan_stability, resnet, sndcgan, wn_resnet
from ganscape.nets.layers import NORMS
from ganscape.nets.mlp import MLPDiscriminator, MLPGenerator
from ganscape.nets.spec import ModelSpec

__all__ = ["ARCHITECTURES", "Architecture", "ModelSpec", "build_discriminator", "build_generator", "count_parameters",
           "mixes_samples", "sample_latent", "truncated_normal", "weight_layers"]


@dataclass(frozen=True)
class Architecture:
    """How to build an architecture's networks.

    ``generator(net_cfg, latent_dim, shape, num_classes) -> G`` and
    ``discriminator(net_cfg, shape, num_classes) -> D``, where ``net_cfg`` is the ``NetConfig``
    (``width``, ``depth``, ``norm`` and the architectures' own sections), ``shape`` the shape of one
    sample and ``num_classes`` the number of classes to condition on (0: unconditional).
    ``settings`` is the dataclass of the architecture's own settings, owned by its module (``g.settings.*``;
    None: it has none, and setting any for it is an error).
    """

    generator: Callable[..., nn.Module]
    discriminator: Callable[..., nn.Module]
    description: str = ""
    settings: type | None = None


def _mlp_generator(cfg, latent_dim, shape, num_classes):
    return MLPGenerator(latent_dim, shape, cfg.width, cfg.depth, lookup(NORMS, cfg.norm, "normalization"))


def _mlp_discriminator(cfg, shape, num_classes):
    return MLPDiscriminator(shape, cfg.width, cfg.depth, lookup(NORMS, cfg.norm, "normalization"))


ARCHITECTURES: dict[str, Architecture] = {
    "mlp": Architecture(_mlp_generator, _mlp_discriminator, "multi-layer perceptron for low-dimensional data"),
    "sndcgan": Architecture(sndcgan.generator, sndcgan.discriminator,
                            "GAN Landscape SNDCGAN (H, W multiples of 8; width 64)"),
    "dcgan": Architecture(dcgan.generator, dcgan.discriminator,
                          "Xiang & Li DCGAN-like nets, 4x4 stride-2 convs down to < 8x8 (width 64)"),
    "resnet_cifar": Architecture(resnet.cifar_generator, resnet.cifar_discriminator,
                                 "GAN Landscape ResNet-CIFAR, 32x32 (G width 256, D width 128)"),
    "resnet19": Architecture(resnet.resnet19_generator, resnet.resnet19_discriminator,
                             "GAN Landscape ResNet19, 128x128 (width 64)"),
    "wn_resnet": Architecture(wn_resnet.generator, wn_resnet.discriminator,
                              "Xiang & Li weight-normalized ResNet, depth blocks per level (width 64, depth 1)"),
    "biggan": Architecture(biggan.generator, biggan.discriminator,
                           "BigGAN, 32-256 px (width = ch: 64 CIFAR, 96 ImageNet); settings in g/d.settings",
                           biggan.BigGANSettings),
    "biggan_deep": Architecture(biggan.deep_generator, biggan.deep_discriminator,
                                "BigGAN-deep, 32-256 px, depth blocks per resolution (ch 128, depth 2)",
                                biggan.BigGANSettings),
    **{arch: Architecture(*gan_stability.BUILDERS[arch], f"GAN_stability {about} (width = nfilter)",
                          gan_stability.GANStabilitySettings) for arch, about in {
        "gs_resnet": "resnet.py, sides 4*2^n, nf*2^k channels up to nfilter_max",
        "gs_resnet2": "resnet2.py, sides multiple of 32, two blocks per size (ImageNet, nf 64)",
        "gs_resnet3": "resnet3.py, sides multiple of 64, 7x7 image convs (pretrained LSUN)",
        "gs_resnet4": "resnet4.py, sides multiple of 64, 7x7 image convs (pretrained CelebA)"}.items()},
}


def build_generator(net_cfg, spec: ModelSpec) -> nn.Module:
    """The generator that ``net_cfg`` (a ``NetConfig``: arch, width, depth, norm) describes for ``spec``."""
    arch = lookup(ARCHITECTURES, net_cfg.arch, "architecture")
    return arch.generator(net_cfg, spec.latent_dim, tuple(spec.shape), spec.num_classes)


def build_discriminator(net_cfg, spec: ModelSpec) -> nn.Module:
    """The discriminator that ``net_cfg`` describes for ``spec``."""
    arch = lookup(ARCHITECTURES, net_cfg.arch, "architecture")
    return arch.discriminator(net_cfg, tuple(spec.shape), spec.num_classes)


def mixes_samples(module: nn.Module) -> bool:
    """Whether ``module``'s output for one sample depends on the others in its batch (batch norm, in
    training): then real and generated batches must go through D in separate calls."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def weight_layers(module: nn.Module) -> list[nn.Module]:
    """The linear and (transposed) convolution layers of ``module``, in order; embeddings excluded.

    Their number is what the Landscape L2 penalty averages over (SNDCGAN D 8, ResNet-CIFAR D 13,
    ResNet19 D 19).
    """
    return [m for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]


def truncated_normal(n: int, dim: int, threshold: float, generator: torch.Generator, device) -> torch.Tensor:
    """z ~ N(0, I) with every coordinate of magnitude above ``threshold`` drawn again until none is (BigGAN's
    truncation trick): each coordinate then follows the standard normal truncated to [-threshold, threshold].
    Lower thresholds trade variety for fidelity."""
    if not threshold > 0:
        raise ValueError(f"the truncation threshold must be > 0, got {threshold}")
    z = torch.randn(n, dim, generator=generator, device=device)
    outside = z.abs() > threshold
    while outside.any():
        z[outside] = torch.randn(int(outside.sum()), generator=generator, device=device)
        outside = z.abs() > threshold
    return z


def sample_latent(n: int, dim: int, dist: str, generator: torch.Generator, device) -> torch.Tensor:
    """Latent vectors z ~ N(0, I) ("normal") or U(-1, 1) ("uniform"), drawn from ``generator``."""
    if dist == "normal":
        return torch.randn(n, dim, generator=generator, device=device)
    if dist == "uniform":
        return torch.rand(n, dim, generator=generator, device=device) * 2 - 1
    raise ValueError(f"unknown latent distribution {dist!r}")
