"""SNDCGAN, the DCGAN-style pair of the GAN Landscape study (Kurach et al., 2019), from SN-GAN.

The Landscape code (compare_gan v2 ``sn_generator`` / ``sn_discriminator``), with w = ``width``
(64 in the paper, the default a preset should set) and images of H x W, both multiples of 8
(32 x 32 and 128 x 128 in the paper):

G: linear z -> (H/8)(W/8) * 8w, feature norm, ReLU, reshape to (8w, H/8, W/8)
   -> deconv 4x4 stride 2 to 4w, 2w, w (each followed by feature norm and ReLU)
   -> deconv 3x3 stride 1 to C -> tanh
D: conv 3x3 s1 w, 4x4 s2 2w, 3x3 s1 2w, 4x4 s2 4w, 3x3 s1 4w, 4x4 s2 8w, 3x3 s1 8w,
   each followed by feature norm (except the first) and LeakyReLU(0.1)
   -> flatten -> linear 1 (8 weight layers, the count the Landscape L2 penalty averages over)

Differences from the Landscape code:

* Images are in [-1, 1]: G ends in tanh where the Landscape G maps tanh to [0, 1] with
  (tanh + 1) / 2, and D reads its input directly where the Landscape D first maps [0, 1] back to
  [-1, 1]. The two nets compute the same functions.
* The Landscape nets are fixed: G always uses batch norm and D only none or spectral norm. Here
  each takes any normalization it allows, through the ``Normalization`` interface. The feature norm
  after G's linear layer acts on the flat vector (one statistic per unit, as the Landscape code's
  batch norm does) before the reshape, and so does the activation (a translated PReLU under weight
  norm then has one threshold per unit, in place of the linear layer's bias).
* ``depth`` is ignored: the depth is fixed. Weights are initialised as ``common.normal_init_`` says.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ganscape.nets.common import LatentInput, ProjectionHead, check_divisible, norm_of, normal_init_
from ganscape.nets.layers import Normalization

# D's convolutions: (kernel, stride, channels as a multiple of the width); padding is always 1.
D_CONVS = [(3, 1, 1), (4, 2, 2), (3, 1, 2), (4, 2, 4), (3, 1, 4), (4, 2, 8), (3, 1, 8)]


class SNDCGANGenerator(nn.Module):
    def __init__(self, latent_dim: int, shape: tuple[int, int, int], width: int, norm: Normalization,
                 num_classes: int = 0):
        super().__init__()
        channels, height, width_px = check_divisible(shape, 8, "sndcgan")
        self.input = LatentInput(latent_dim, num_classes)
        self.seed_shape = (8 * width, height // 8, width_px // 8)
        units = math.prod(self.seed_shape)
        self.seed = nn.Sequential(norm.linear(self.input.out_features, units), norm.feature_norm(units, 0),
                                  norm.activation(units, nn.ReLU))
        layers: list[nn.Module] = []
        for c in (8 * width, 4 * width, 2 * width):
            layers += [norm.conv_transpose(c, c // 2, 4, 2, 1), norm.feature_norm(c // 2, 2),
                       norm.activation(c // 2, nn.ReLU)]
        layers += [norm.conv_transpose(width, channels, 3, 1, 1, last=True), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        normal_init_(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        seed = self.seed(self.input(z, y)).view(len(z), *self.seed_shape)
        return self.body(seed)


class SNDCGANDiscriminator(nn.Module):
    def __init__(self, shape: tuple[int, int, int], width: int, norm: Normalization, num_classes: int = 0):
        super().__init__()
        in_channels, height, width_px = check_divisible(shape, 8, "sndcgan")
        layers: list[nn.Module] = []
        for i, (kernel, stride, multiple) in enumerate(D_CONVS):
            out_channels = multiple * width
            layers += [norm.conv(in_channels, out_channels, kernel, stride, 1),
                       nn.Identity() if i == 0 else norm.feature_norm(out_channels, 2),
                       norm.activation(out_channels, lambda: nn.LeakyReLU(0.1))]
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        num_features = 8 * width * (height // 8) * (width_px // 8)
        self.head = ProjectionHead(norm.linear(num_features, 1, last=True), num_features, num_classes)
        normal_init_(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.features(x).flatten(1), y)


def generator(cfg, latent_dim: int, shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return SNDCGANGenerator(latent_dim, shape, cfg.width, norm_of(cfg), num_classes)


def discriminator(cfg, shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return SNDCGANDiscriminator(shape, cfg.width, norm_of(cfg), num_classes)
