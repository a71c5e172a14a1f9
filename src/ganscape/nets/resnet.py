"""The ResNets of the GAN Landscape study (Kurach et al., 2019): ResNet-CIFAR and ResNet19.

Both follow the Landscape code (compare_gan v2 ``resnet_architecture.py``), which differs from
other SN-GAN-style ResNets in details that the study itself lists as a pitfall:

* Block: [feature norm] -> ReLU -> conv 3x3 -> [feature norm] -> ReLU -> conv 3x3, plus a shortcut
  that is ALWAYS a 3x3 conv, even when the block keeps the channel count.
* G blocks upsample before their first conv by zero-insertion unpooling (``unpool``: each value
  goes to the top-left of a 2x2 cell, zeros elsewhere; not nearest neighbour), on the shortcut too.
* D blocks that downsample average-pool 2x2 after the second conv and after the shortcut conv (done
  here once, after the sum: pooling is linear, so that is the same).
* D's first block also starts with feature norm and ReLU, applied to the image itself.
* D ends in ReLU, a global MEAN pool and a linear layer.

ResNet-CIFAR (32x32; G width 256 and D width 128 in the study: the presets should set g.width=256
and d.width=128):
  G: linear z -> (w, H/8, W/8), 3 up-blocks w -> w, feature norm, ReLU, conv 3x3 to C, tanh.
  D: 4 blocks to w, the first two downsampling (13 weight layers).
ResNet19 (128x128; w = 64 in the study, the default a preset should set):
  G: linear z -> (8w, H/32, W/32), 5 up-blocks 8w -> 8w -> 4w -> 4w -> 2w -> w, feature norm,
     ReLU, conv 3x3 to C, tanh.
  D: 6 downsampling blocks C -> w -> 2w -> 4w -> 4w -> 8w -> 8w (128^2 -> 2^2): 6 * 3 convs plus the
     linear layer are the 19 weight layers the name and the Landscape L2 penalty count.

Differences from the Landscape code:

* Images are in [-1, 1]. G ends in tanh where the Landscape G ends in a sigmoid on [0, 1]
  (tanh(a) = 2 sigmoid(2a) - 1, the same family). D first maps its input to (x + 1) / 2, the
  Landscape's [0, 1] range: the ReLU that opens D's first block is then the no-op on raw images that
  it is in the Landscape code, instead of discarding every negative pixel.
* The Landscape G always uses batch norm and its D none, batch, layer or spectral norm; here each
  takes any normalization it allows, through the ``Normalization`` interface.
* ``depth`` is ignored: the depth is fixed. Weights are initialised as ``common.normal_init_`` says.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganscape.nets.common import LatentInput, ProjectionHead, check_divisible, norm_of, normal_init_
from ganscape.nets.layers import Normalization, memory_format_of


def unpool(x: torch.Tensor) -> torch.Tensor:
    """Zero-insertion unpooling: (N, C, H, W) -> (N, C, 2H, 2W) with x at even rows and columns."""
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, 2 * h, 2 * w).contiguous(memory_format=memory_format_of(x))  # NHWC stays NHWC
    out[:, :, ::2, ::2] = x
    return out


class _ResidualLayers(nn.Module):
    """The layers of a Landscape block: [norm] -> ReLU -> conv3x3 -> [norm] -> ReLU -> conv3x3 as the
    residual branch, and a 3x3 conv as the shortcut (always, even when in == out)."""

    def __init__(self, in_channels: int, out_channels: int, norm: Normalization):
        super().__init__()
        self.pre1 = nn.Sequential(norm.feature_norm(in_channels, 2), norm.activation(in_channels, nn.ReLU))
        self.conv1 = norm.conv(in_channels, out_channels, 3, 1, 1)
        self.pre2 = nn.Sequential(norm.feature_norm(out_channels, 2), norm.activation(out_channels, nn.ReLU))
        self.conv2 = norm.conv(out_channels, out_channels, 3, 1, 1)
        self.shortcut = norm.conv(in_channels, out_channels, 3, 1, 1)


class GBlock(_ResidualLayers):
    """Landscape G block: unpooled pre-activation residual branch plus an unpooled 3x3 conv shortcut."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(self.pre2(self.conv1(unpool(self.pre1(x)))))
        return h + self.shortcut(unpool(x))


class DBlock(_ResidualLayers):
    """Landscape D block: pre-activation residual branch plus a 3x3 conv shortcut, then an optional 2x2 mean pool."""

    def __init__(self, in_channels: int, out_channels: int, downsample: bool, norm: Normalization):
        super().__init__(in_channels, out_channels, norm)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.pre2(self.conv1(self.pre1(x)))) + self.shortcut(x)
        return F.avg_pool2d(out, 2) if self.downsample else out


class ResNetGenerator(nn.Module):
    """linear z -> (channels[0], H / 2^B, W / 2^B), B up-blocks through ``channels``, norm, ReLU, conv 3x3, tanh."""

    def __init__(self, latent_dim: int, shape: tuple[int, int, int], channels: list[int], norm: Normalization,
                 num_classes: int = 0, arch: str = "resnet"):
        super().__init__()
        num_blocks = len(channels) - 1
        out_channels, height, width = check_divisible(shape, 2 ** num_blocks, arch)
        self.input = LatentInput(latent_dim, num_classes)
        self.seed_shape = (channels[0], height >> num_blocks, width >> num_blocks)
        self.seed = norm.linear(self.input.out_features, channels[0] * self.seed_shape[1] * self.seed_shape[2])
        self.blocks = nn.Sequential(*[GBlock(c_in, c_out, norm) for c_in, c_out in zip(channels, channels[1:])])
        self.out = nn.Sequential(norm.feature_norm(channels[-1], 2), norm.activation(channels[-1], nn.ReLU),
                                 norm.conv(channels[-1], out_channels, 3, 1, 1, last=True), nn.Tanh())
        normal_init_(self)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.out(self.blocks(self.seed(self.input(z, y)).view(len(z), *self.seed_shape)))


class ResNetDiscriminator(nn.Module):
    """Blocks given as (out_channels, downsample), then ReLU, global mean pool and a linear layer."""

    def __init__(self, shape: tuple[int, int, int], blocks: list[tuple[int, bool]], norm: Normalization,
                 num_classes: int = 0, arch: str = "resnet"):
        super().__init__()
        in_channels = check_divisible(shape, 2 ** sum(down for _, down in blocks), arch)[0]
        layers = []
        for out_channels, downsample in blocks:
            layers.append(DBlock(in_channels, out_channels, downsample, norm))
            in_channels = out_channels
        self.blocks = nn.Sequential(*layers)
        self.post = norm.activation(in_channels, nn.ReLU)
        self.head = ProjectionHead(norm.linear(in_channels, 1, last=True), in_channels, num_classes)
        normal_init_(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.post(self.blocks((x + 1) / 2))
        return self.head(h.mean(dim=(2, 3)), y)


def cifar_generator(cfg, latent_dim: int, shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return ResNetGenerator(latent_dim, shape, [cfg.width] * 4, norm_of(cfg), num_classes, "resnet_cifar")


def cifar_discriminator(cfg, shape: tuple[int, ...], num_classes: int) -> nn.Module:
    blocks = [(cfg.width, True), (cfg.width, True), (cfg.width, False), (cfg.width, False)]
    return ResNetDiscriminator(shape, blocks, norm_of(cfg), num_classes, "resnet_cifar")


def resnet19_generator(cfg, latent_dim: int, shape: tuple[int, ...], num_classes: int) -> nn.Module:
    channels = [m * cfg.width for m in (8, 8, 4, 4, 2, 1)]
    return ResNetGenerator(latent_dim, shape, channels, norm_of(cfg), num_classes, "resnet19")


def resnet19_discriminator(cfg, shape: tuple[int, ...], num_classes: int) -> nn.Module:
    blocks = [(m * cfg.width, True) for m in (1, 2, 4, 4, 8, 8)]
    return ResNetDiscriminator(shape, blocks, norm_of(cfg), num_classes, "resnet19")
