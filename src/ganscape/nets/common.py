"""Pieces shared by the convolutional architectures: class conditioning, initialisation, size checks.

Conditioning (``num_classes > 0``):

* G concatenates a learned class embedding (a plain ``nn.Embedding`` with as many dimensions as the
  latent) to z, so its first layer sees ``[z, embed(y)]``. Class-conditional batch norm, as in
  BigGAN, is a later addition.
* D is a projection discriminator (Miyato & Koyama, 2018): with phi(x) the features that D's final
  weight layer reads, ``D(x, y) = final(phi(x)) + <embed(y), phi(x)>``. The embedding is a plain
  ``nn.Embedding`` (BigGAN spectrally normalises it; that comes later too).

Unconditional networks (``num_classes == 0``) ignore any labels they are given.
"""

from __future__ import annotations

import torch
from torch import nn

from ganscape.errors import ConfigError, lookup
from ganscape.nets.layers import NORMS, Normalization, WeightNorm

INIT_STD = 0.02


def norm_of(cfg) -> Normalization:
    """The ``Normalization`` that ``cfg.norm`` names."""
    return lookup(NORMS, cfg.norm, "normalization")


def check_divisible(shape: tuple[int, ...], factor: int, arch: str) -> tuple[int, int, int]:
    """``shape`` as (C, H, W), after checking that it is an image shape with H and W multiples of ``factor``."""
    if len(shape) != 3:
        raise ConfigError(f"{arch} needs images of shape (C, H, W), not samples of shape {tuple(shape)}")
    channels, height, width = shape
    if height % factor or width % factor:
        raise ConfigError(f"{arch} needs image height and width that are multiples of {factor}, "
                          f"not {height}x{width}")
    return channels, height, width


def halvings(shape: tuple[int, ...], arch: str) -> tuple[int, int, int]:
    """For nets that halve the image until the map is smaller than 8 x 8: (levels, final H, final W).

    The map is halved while both sides are at least 8, so 32 -> 16 -> 8 -> 4 is three levels and
    28 -> 14 -> 7 two. Every halved side must be even.
    """
    _, height, width = check_divisible(shape, 1, arch)
    levels = 0
    while min(height, width) >= 8:
        if height % 2 or width % 2:
            raise ConfigError(f"{arch} halves the image until it is smaller than 8x8 and needs even sides "
                              f"on the way; {shape[1]}x{shape[2]} reaches {height}x{width}")
        height, width, levels = height // 2, width // 2, levels + 1
    if levels == 0:
        raise ConfigError(f"{arch} needs images of at least 8x8, not {height}x{width}")
    return levels, height, width


def normal_init_(module: nn.Module, std: float = INIT_STD) -> nn.Module:
    """Weights ~ N(0, std) and zero biases in every linear, (transposed) conv and embedding layer.

    This is the GAN Landscape code's initialisation (linear and transposed conv N(0, 0.02), bias 0),
    which is also DCGAN's. Two simplifications: the Landscape ResNets draw conv kernels from a
    normal truncated at two standard deviations (std about 0.88 * 0.02), here a plain normal; and
    class embeddings, which the Landscape nets do not have, get the same N(0, 0.02) as the one-hot
    linear maps that compare_gan uses for conditioning. Normalization gains, translated-ReLU
    parameters and spectral-norm buffers are left as their layers set them, and so are
    weight-normalized layers, which start as Xiang & Li's code starts them (``WeightNorm.reset_weight``).
    """
    for layer in module.modules():
        if isinstance(layer, WeightNorm):
            continue
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Embedding)):
            nn.init.normal_(layer.weight, 0.0, std)
            if getattr(layer, "bias", None) is not None:
                nn.init.zeros_(layer.bias)
    return module


def seed_layer_init_(layer: nn.Module) -> None:
    """G's first layer (latent to the first feature map): under weight norm it starts at 1% of the
    other layers' scale, as in Xiang & Li's code (``initWeightFactor`` 0.01 in GAN-weight-norm's
    ``torch/model.lua``, ``init_factor = 0.01`` in gan-weightnorm-resnet's ``model.py``)."""
    if isinstance(layer, WeightNorm):
        layer.reset_weight(init_factor=0.01)


def _require_labels(y: torch.Tensor | None) -> torch.Tensor:
    if y is None:
        raise ValueError("this network is class-conditional: pass the labels y")
    return y


def class_embedding(embed: nn.Embedding, y: torch.Tensor) -> torch.Tensor:
    """The embedding of labels ``y`` (N,), or of class mixtures: float weights (N, classes) give the
    weighted sum of the classes' embeddings, which interpolates between classes."""
    return y.to(embed.weight.dtype) @ embed.weight if y.is_floating_point() else embed(y)


class LatentInput(nn.Module):
    """G's input: z, or ``[z, embed(y)]`` when G is class-conditional (``y``: labels, or class mixtures)."""

    def __init__(self, latent_dim: int, num_classes: int):
        super().__init__()
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        self.out_features = latent_dim * (2 if num_classes else 1)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if self.embed is None:
            return z
        return torch.cat([z, class_embedding(self.embed, _require_labels(y))], dim=1)


class ProjectionHead(nn.Module):
    """D's output: ``final(h)`` plus, when conditional, the projection ``<embed(y), flatten(h)>``.

    ``final`` is D's last weight layer (a linear layer, or a conv covering the whole map) producing
    one value per sample from ``h``; ``num_features`` is the size of ``h`` flattened.
    """

    def __init__(self, final: nn.Module, num_features: int, num_classes: int):
        super().__init__()
        self.final = final
        self.embed = nn.Embedding(num_classes, num_features) if num_classes else None

    def forward(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        logits = self.final(h).view(len(h))
        if self.embed is None:
            return logits
        return logits + (self.embed(_require_labels(y)) * h.flatten(1)).sum(dim=1)
