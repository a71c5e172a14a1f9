"""The weight-normalized ResNet of Xiang & Li (gan-weightnorm-resnet, the later versions of the paper).

Built from the authors' code (``model.py``, ``modules/ResidueBlock.py``). The nets have levels like
the DCGAN-like nets (``dcgan.py``): the map is halved while it is at least 8x8, level k has
w * 2^k channels (capped at 8w; w = ``width``, 64 in the authors' example), and each level holds
``depth`` residual blocks (1 in the authors' example: the preset should set depth=1).

D block (the first of a level downsamples from the previous level's channels):
  residual: conv 4x4 stride 2 (3x3 stride 1 when not downsampling) -> activation -> conv 3x3
  shortcut: avgpool 2x2 when downsampling, then a 1x1 conv when the channel count changes
  out = activation(add(residual, shortcut))
D: image -> levels -> conv covering the whole remaining map to 1 logit.

G block (the last of a level upsamples to the next level's channels, or to the image's):
  residual: conv 3x3 -> activation -> deconv 4x4 stride 2 (conv 3x3 when not upsampling)
  shortcut: a 1x1 conv when the channel count changes, then nearest-neighbour upsampling x2
  out = activation(add(residual, shortcut)); in G's very last block no activation
G: linear z -> (top channels, final map of D), activation -> levels -> tanh.

``add`` is the authors' weight-normalized addition (``WNAddition``): per channel,
out = (w_r * r + w_s * s) / ||(w_r, w_s)||, a learnable, norm-preserving mix that starts at
(w_r, w_s) = (0, 1), so every block starts as its shortcut.

Every weight layer comes from the ``Normalization`` (under ``weight`` this is the authors' net:
strict WN layers followed by TPReLUs); feature norm, when the normalization has one, follows every
hidden conv except those reading the image. The WN addition is part of the architecture and is
kept under every normalization. Choices and differences from the authors' code:

* Images are in [-1, 1]; G ends in tanh where the authors' G ends in a sigmoid.
* The authors end G's last block with a separate per-channel affine map after the addition. Here
  the two layers that produce the image (the residual's last deconv and the shortcut's 1x1 conv)
  are the net's last layers (``last=True``: affine under WN), which gives the same freedom.
* The authors' first G layer is an affine WN linear layer followed by a plain PReLU; here it is a
  hidden layer (strict under WN) followed by the normalization's activation, a TPReLU under WN.
* Level widths are w * 2^k capped at 8w (the authors list them by hand, e.g. 64 128 256 384 512).
* Sides must stay even while halved (the authors pad sides that are 2 mod 4).
* Weights start as ``common.normal_init_`` says; weight-normalized layers as in the authors' code
  (U(+-1 / sqrt(fan_in)), G's first layer at 1% of that), since their scale sets the effective
  learning rate.
* Default activations are LeakyReLU(0.2) in D and ReLU in G when the normalization has none of its own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganscape.nets.common import LatentInput, ProjectionHead, halvings, norm_of, normal_init_, seed_layer_init_
from ganscape.nets.layers import Normalization


def _leaky_relu() -> nn.Module:
    return nn.LeakyReLU(0.2)


def level_channels(width: int, levels: int) -> list[int]:
    return [width * min(2 ** k, 8) for k in range(levels)]


class WNAddition(nn.Module):
    """out = (w_r * r + w_s * s) / ||(w_r, w_s)|| per channel, with (w_r, w_s) initialised to (0, 1).

    The two weights are separate vectors so that no weight penalty mistakes them for a kernel.
    """

    eps = 1e-6  # guards the division when both weights of a channel shrink to zero

    def __init__(self, channels: int):
        super().__init__()
        self.residual_weight = nn.Parameter(torch.zeros(channels))
        self.shortcut_weight = nn.Parameter(torch.ones(channels))

    def forward(self, residual: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        scale = torch.hypot(self.residual_weight, self.shortcut_weight).clamp_min(self.eps)
        w_r, w_s = (w.div(scale).view(1, -1, 1, 1) for w in (self.residual_weight, self.shortcut_weight))
        return w_r * residual + w_s * shortcut


class DBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, downsample: bool, norm: Normalization,
                 reads_image: bool = False):
        super().__init__()
        kernel, stride = (4, 2) if downsample else (3, 1)

        def normed(layer: nn.Module, channels: int) -> list[nn.Module]:
            return [layer, nn.Identity() if reads_image else norm.feature_norm(channels, 2)]

        self.residual = nn.Sequential(*normed(norm.conv(in_channels, out_channels, kernel, stride, 1), out_channels),
                                      norm.activation(out_channels, _leaky_relu),
                                      norm.conv(out_channels, out_channels, 3, 1, 1),
                                      norm.feature_norm(out_channels, 2))
        shortcut: list[nn.Module] = [nn.AvgPool2d(2)] if downsample else []
        if in_channels != out_channels:
            shortcut += normed(norm.conv(in_channels, out_channels, 1), out_channels)
        self.shortcut = nn.Sequential(*shortcut)
        self.add = WNAddition(out_channels)
        self.post = norm.activation(out_channels, _leaky_relu)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.add(self.residual(x), self.shortcut(x)))


class GBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, upsample: bool, norm: Normalization, last: bool = False):
        super().__init__()
        if upsample:
            widen = norm.conv_transpose(in_channels, out_channels, 4, 2, 1, last=last)
        else:
            widen = norm.conv(in_channels, out_channels, 3, 1, 1, last=last)
        out_norm = nn.Identity() if last else norm.feature_norm(out_channels, 2)
        self.residual = nn.Sequential(norm.conv(in_channels, in_channels, 3, 1, 1), norm.feature_norm(in_channels, 2),
                                      norm.activation(in_channels, nn.ReLU), widen, out_norm)
        shortcut: list[nn.Module] = []
        if in_channels != out_channels:
            shortcut += [norm.conv(in_channels, out_channels, 1, last=last),
                         nn.Identity() if last else norm.feature_norm(out_channels, 2)]
        self.upsample = upsample
        self.shortcut = nn.Sequential(*shortcut)
        self.add = WNAddition(out_channels)
        self.post = nn.Identity() if last else norm.activation(out_channels, nn.ReLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.shortcut(x)
        if self.upsample:
            shortcut = F.interpolate(shortcut, scale_factor=2, mode="nearest")
        return self.post(self.add(self.residual(x), shortcut))


class WNResNetDiscriminator(nn.Module):
    def __init__(self, shape: tuple[int, int, int], width: int, depth: int, norm: Normalization,
                 num_classes: int = 0):
        super().__init__()
        levels, height, width_px = halvings(shape, "wn_resnet")
        in_channels = shape[0]
        blocks = []
        for channels in level_channels(width, levels):
            blocks.append(DBlock(in_channels, channels, True, norm, reads_image=not blocks))
            blocks += [DBlock(channels, channels, False, norm) for _ in range(depth - 1)]
            in_channels = channels
        self.blocks = nn.Sequential(*blocks)
        final = norm.conv(in_channels, 1, (height, width_px), last=True)
        self.head = ProjectionHead(final, in_channels * height * width_px, num_classes)
        normal_init_(self)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.blocks(x), y)


class WNResNetGenerator(nn.Module):
    def __init__(self, latent_dim: int, shape: tuple[int, int, int], width: int, depth: int, norm: Normalization,
                 num_classes: int = 0):
        super().__init__()
        levels, height, width_px = halvings(shape, "wn_resnet")
        channels = level_channels(width, levels)[::-1] + [shape[0]]  # top level first, then the image
        self.input = LatentInput(latent_dim, num_classes)
        self.seed_shape = (channels[0], height, width_px)
        self.seed = norm.linear(self.input.out_features, channels[0] * height * width_px)
        self.seed_post = nn.Sequential(norm.feature_norm(channels[0], 2), norm.activation(channels[0], nn.ReLU))
        blocks = []
        for level, (c_in, c_out) in enumerate(zip(channels, channels[1:])):
            blocks += [GBlock(c_in, c_in, False, norm) for _ in range(depth - 1)]
            blocks.append(GBlock(c_in, c_out, True, norm, last=level == levels - 1))
        self.blocks = nn.Sequential(*blocks)
        normal_init_(self)
        seed_layer_init_(self.seed)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        seed = self.seed(self.input(z, y)).view(len(z), *self.seed_shape)
        return torch.tanh(self.blocks(self.seed_post(seed)))


def generator(cfg, latent_dim: int, shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return WNResNetGenerator(latent_dim, shape, cfg.width, cfg.depth, norm_of(cfg), num_classes)


def discriminator(cfg, shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return WNResNetDiscriminator(shape, cfg.width, cfg.depth, norm_of(cfg), num_classes)
