"""The DCGAN-like nets of Xiang & Li (2017), "On the Effects of Batch and Weight Normalization in GANs".

As in the authors' code (GAN-weight-norm, ``build_discriminator`` / ``build_generator``), with
w = ``width`` (64 in the paper, the default a preset should set):

D: conv 4x4 stride 2 with w * 2^k channels (k = 0, 1, ...), added while the map is at least 8x8,
   each followed by feature norm (except the first) and an activation
   -> conv covering the whole remaining map to 1 logit.
   32x32 gives 32 -> 16 -> 8 -> 4 (w, 2w, 4w) and a 4x4 conv; 64x64 adds a level with 8w.
G: the mirror image: linear z -> (4w, 4, 4) for 32x32, feature norm, activation
   -> deconv 4x4 stride 2 halving the channels, each followed by feature norm and activation
   -> deconv 4x4 stride 2 to C -> tanh.

The paper's three variants are the normalizations ``none``, ``batch`` and ``weight``; any other
works too. Under weight norm every hidden layer is strict and followed by a translated PReLU, and
the last layer of each net is affine, as in the paper.

Differences from the authors' code:

* Images are in [-1, 1] and G ends in tanh, where the authors' G ends in a sigmoid on [0, 1].
* Default activations are LeakyReLU(0.2) in D and ReLU in G (DCGAN's); the authors use PReLU in
  their unnormalized and batch-norm variants. Weight norm brings its TPReLU either way.
* Sides must stay even while they are halved; the authors instead pad maps whose side is 2 mod 4.
* Weights start as ``common.normal_init_`` (N(0, 0.02), DCGAN's), except weight-normalized layers,
  which start as in the authors' code: U(+-1 / sqrt(fan_in)), G's first layer at 1% of that
  (``WeightNorm.reset_weight``, ``common.seed_layer_init_``). Under weight norm that scale sets the
  effective learning rate.
* ``depth`` is ignored: the image size sets the number of levels.
"""

from __future__ import annotations

import torch
from torch import nn

from ganscape.nets.common import LatentInput, ProjectionHead, halvings, norm_of, normal_init_, seed_layer_init_
from ganscape.nets.layers import Normalization


def _leaky_relu() -> nn.Module:
    return nn.LeakyReLU(0.2)


class DCGANGenerator(nn.Module):
    def __init__(self, latent_dim: int, shape: tuple[int, int, int], width: int, norm: Normalization,
                 num_classes: int = 0):
        super().__init__()
        levels, height, width_px = halvings(shape, "dcgan")
        channels = width * 2 ** (levels - 1)
        self.input = LatentInput(latent_dim, num_classes)
        self.seed_shape = (channels, height, width_px)
        self.seed = norm.linear(self.input.out_features, channels * height * width_px)
        layers: list[nn.Module] = [norm.feature_norm(channels, 2), norm.activation(channels, nn.ReLU)]
        for _ in range(levels - 1):
            layers += [norm.conv_transpose(channels, channels // 2, 4, 2, 1), norm.feature_norm(channels // 2, 2),
                       norm.activation(channels // 2, nn.ReLU)]
            channels //= 2
        layers += [norm.conv_transpose(channels, shape[0], 4, 2, 1, last=True), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        normal_init_(self)
        seed_layer_init_(self.seed)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(self.seed(self.input(z, y)).view(len(z), *self.seed_shape))


class DCGANDiscriminator(nn.Module):
    def __init__(self, shape: tuple[int, int, int], width: int, norm: Normalization, num_classes: int = 0):
        super().__init__()
        levels, height, width_px = halvings(shape, "dcgan")
        in_channels = shape[0]
        layers: list[nn.Module] = []
        for k in range(levels):
            out_channels = width * 2 ** k
            layers += [norm.conv(in_channels, out_channels, 4, 2, 1),
                       nn.Identity() if k == 0 else norm.feature_norm(out_channels, 2),
                       norm.activation(out_channels, _leaky_relu)]
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        final = norm.conv(in_channels, 1, (height, width_px), last=True)
        self.head = ProjectionHead(final, in_channels * height * width_px, num_classes)
        normal_init_(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x), y)


def generator(cfg, latent_dim: int, shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return DCGANGenerator(latent_dim, shape, cfg.width, norm_of(cfg), num_classes)


def discriminator(cfg, shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return DCGANDiscriminator(shape, cfg.width, norm_of(cfg), num_classes)
