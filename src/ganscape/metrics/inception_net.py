"""The FID Inception-v3: the TensorFlow graph of 2015-12-05 that FID, KID and the Inception Score use.

FIDInception is the network of ``inception-2015-12-05.tgz`` as ported to PyTorch by pytorch-fid: the
layout of torchvision's Inception-v3 (batch norm with eps 0.001 after every bias-free convolution)
with the blocks of the TF graph, which differ from torchvision's in the pooling branches:

* Mixed_5b..5d (A), Mixed_6b..6e (C) and Mixed_7b (E_1) average-pool without counting the zero
  padding (``count_include_pad=False``), as TF's ``avg_pool`` with SAME padding does;
* Mixed_7c (E_2) max-pools in its pooling branch, where torchvision average-pools;
* the classifier has 1008 outputs (1000 ImageNet classes and 8 unused ones), not 1000.

Parameter and buffer names are those of pytorch-fid's state dict (``Conv2d_1a_3x3.conv.weight``,
``Conv2d_1a_3x3.bn.running_var``, ..., ``Mixed_7c.branch_pool.bn.running_var``, ``fc.weight``,
``fc.bias``), so its weight file loads as it is.

The weights, and which file they come from, are ``metrics/inception.py``'s (the module callers import).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganscape.errors import CheckpointError

INPUT_SIZE = 299
FEATURES = 2048
CLASSES = 1008

NO_LOGITS = ("these weights have no classification layer: the Inception Score cannot be computed; "
             "provide the full pt_inception weights with `ganscape data download inception` (online) or "
             "metrics.inception_weights=PATH")


class BasicConv2d(nn.Module):
    """Convolution without bias, batch norm (eps 0.001, as in the TF graph), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_same(x: torch.Tensor) -> torch.Tensor:
    # TF's 3x3 SAME average pool divides by the number of real (unpadded) pixels under the window.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(nn.Module):
    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, 1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch5x5_2(self.branch5x5_1(x))
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        d = self.branch_pool(_avg_pool_same(x))
        return torch.cat([a, b, c, d], 1)


class InceptionB(nn.Module):
    """Grid reduction 35x35 -> 17x17 (Mixed_6a); the same in torchvision and the TF graph."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3(x)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        c = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([a, b, c], 1)


class FIDInceptionC(nn.Module):
    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        c = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            c = layer(c)
        d = self.branch_pool(_avg_pool_same(x))
        return torch.cat([a, b, c, d], 1)


class InceptionD(nn.Module):
    """Grid reduction 17x17 -> 8x8 (Mixed_7a); the same in torchvision and the TF graph."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_2(self.branch3x3_1(x))
        b = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b = layer(b)
        c = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([a, b, c], 1)


class FIDInceptionE(nn.Module):
    """Mixed_7b (``pool="avg"``, TF's FIDInceptionE_1) and Mixed_7c (``pool="max"``, FIDInceptionE_2)."""

    def __init__(self, in_channels: int, pool: str):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', not {pool!r}")
        self.pool = pool
        self.branch1x1 = BasicConv2d(in_channels, 320, 1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch3x3_1(x)
        b = torch.cat([self.branch3x3_2a(b), self.branch3x3_2b(b)], 1)
        c = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        c = torch.cat([self.branch3x3dbl_3a(c), self.branch3x3dbl_3b(c)], 1)
        if self.pool == "avg":
            pooled = _avg_pool_same(x)
        else:  # the TF graph max-pools here, a bug of the original graph that FID has kept ever since
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        d = self.branch_pool(pooled)
        return torch.cat([a, b, c, d], 1)


def resize_tf1_bilinear(x: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """TF1's ``tf.image.resize_bilinear`` (align_corners=False, half_pixel_centers=False).

    Output pixel i samples input coordinate ``i * in / out`` (no half-pixel offset), interpolating
    linearly between the two neighbouring pixels and repeating the last pixel past the edge. This is
    the resize inside the 2015-12-05 graph (its ``ResizeBilinear`` node).
    """
    def along(t: torch.Tensor, dim: int) -> torch.Tensor:
        n = t.shape[dim]
        src = torch.arange(size, device=t.device, dtype=torch.float64) * (n / size)
        lo = src.floor().long().clamp(max=n - 1)
        hi = (lo + 1).clamp(max=n - 1)
        w = (src - lo.to(torch.float64)).to(t.dtype)
        shape = [1] * t.ndim
        shape[dim] = size
        w = w.view(shape)
        return t.index_select(dim, lo) * (1 - w) + t.index_select(dim, hi) * w

    return along(along(x, 2), 3)


def _bicubic(x: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with a = -0.5, PIL's ``BICUBIC`` filter (support 2)."""
    x, a = x.abs(), -0.5
    return torch.where(x < 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                       torch.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, torch.zeros_like(x)))


def pil_bicubic_taps(n: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """PIL's antialiased bicubic resampling of ``n`` samples to ``size`` (its ``precompute_coeffs``).

    Output sample i is centred on input coordinate ``(i + 0.5) * n / size``; when shrinking, the kernel
    is stretched by ``n / size`` (the antialiasing), and the weights of the input samples it covers are
    normalised to sum 1. Returns the input indices (size, taps) and their float64 weights (size, taps);
    taps past a sample's window have weight 0 (and a valid index, so they add exact zeros).
    """
    scale = n / size
    stretch = max(scale, 1.0)
    support = 2.0 * stretch
    taps = math.ceil(support) * 2 + 1
    center = (torch.arange(size, dtype=torch.float64) + 0.5) * scale
    first = (center - support + 0.5).floor().clamp(min=0)
    last = (center + support + 0.5).floor().clamp(max=n)
    index = first[:, None] + torch.arange(taps, dtype=torch.float64)
    weight = _bicubic((index - center[:, None] + 0.5) / stretch) * (index < last[:, None])
    return index.long().clamp(max=n - 1), weight / weight.sum(1, keepdim=True)


def resize_pil_bicubic(pixels: torch.Tensor, size: int = INPUT_SIZE) -> torch.Tensor:
    """clean-fid's resize (``"clean"`` mode): PIL's antialiased ``BICUBIC`` of each channel as a float ('F')
    image to ``size`` x ``size``, clipped to [0, 255]. ``pixels`` are 8-bit values as floats (N, C, H, W).

    Width first, then height, as PIL does; the weights are PIL's (:func:`pil_bicubic_taps`, in float64)
    and each output is their weighted sum of float32 pixels, so the result equals PIL's to float32 rounding
    on any device, without a round trip through PIL."""
    def along(t: torch.Tensor, dim: int) -> torch.Tensor:
        if t.shape[dim] == size:  # PIL skips a pass that keeps the size
            return t
        index, weight = pil_bicubic_taps(t.shape[dim], size)
        index, weight = index.to(t.device), weight.to(device=t.device, dtype=t.dtype)
        shape = [1] * t.ndim
        shape[dim] = size
        total = t.index_select(dim, index[:, 0]) * weight[:, 0].view(shape)
        for tap in range(1, index.shape[1]):
            total = total + t.index_select(dim, index[:, tap]) * weight[:, tap].view(shape)
        return total

    return along(along(pixels, 3), 2).clamp(0, 255)


class FIDInception(nn.Module):
    """The FID Inception-v3, TF graph of 2015-12-05; inputs in [-1, 1], (N, 3, H, W), any size.

    ``forward(images)`` returns ``(pool_features, logits)``: the 2048-d ``pool_3`` features (N, 2048)
    that FID, KID and precision/recall use, and the 1008-way classifier logits (N, 1008) for the
    Inception Score, or None when built with ``with_logits=False`` (weights without a classifier).
    ``forward(images, logits=True)`` and :meth:`logits` raise a CheckpointError in that case.

    Resizing to 299x299: ``resize="bilinear"`` (the default) is ``F.interpolate(mode="bilinear",
    align_corners=False)``, as in pytorch-fid. The TF graph's own resize (TF1 ``resize_bilinear``
    without half-pixel centres) samples at slightly different positions; this is a known, documented
    deviation that changes FID values slightly (far below the run-to-run spread of FID, but enough to
    make values not digit-for-digit comparable with the TF code). ``resize="tf1"`` uses
    :func:`resize_tf1_bilinear`, the TF-compatible resize. ``resize="none"`` takes only images resized
    before they are scaled (clean-fid's convention, :func:`resize_pil_bicubic`). Images already 299x299
    are not resampled.

    Input scale: the TF graph maps 8-bit pixels p to (p - 128) / 128, in [-1, 0.9921875]; pytorch-fid
    and this class take the [-1, 1] that ``2 * p / 255 - 1`` gives. Callers wanting the TF scale
    exactly can pass ``(p - 128) / 128`` themselves.
    """

    def __init__(self, with_logits: bool = True, resize: str = "bilinear"):
        super().__init__()
        if resize not in ("bilinear", "tf1", "none"):
            raise ValueError(f"resize must be 'bilinear', 'tf1' or 'none', not {resize!r}")
        self.with_logits = with_logits
        self.resize = resize
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = FIDInceptionA(192, pool_features=32)
        self.Mixed_5c = FIDInceptionA(256, pool_features=64)
        self.Mixed_5d = FIDInceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        self.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        self.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = FIDInceptionE(1280, pool="avg")
        self.Mixed_7c = FIDInceptionE(2048, pool="max")
        self.fc = nn.Linear(FEATURES, CLASSES) if with_logits else None
        self.eval()

    def train(self, mode: bool = True) -> "FIDInception":
        # A feature extractor with frozen batch-norm statistics: training mode would change them.
        return super().train(False)

    def _resized(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"FIDInception expects images (N, 3, H, W), got {tuple(images.shape)}")
        if images.shape[-2:] == (INPUT_SIZE, INPUT_SIZE):
            return images
        if self.resize == "tf1":
            return resize_tf1_bilinear(images, INPUT_SIZE)
        if self.resize == "none":
            raise ValueError(f"FIDInception(resize='none') takes images already resized to {INPUT_SIZE}x{INPUT_SIZE}, "
                             f"got {tuple(images.shape)}")
        return F.interpolate(images, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)

    def forward(self, images: torch.Tensor, logits: bool | None = None):
        """``(pool_features (N, 2048), logits (N, 1008) or None)``; ``logits=True`` insists on logits."""
        if logits and self.fc is None:
            raise CheckpointError(NO_LOGITS)
        x = self._resized(images)
        x = self.Conv2d_1a_3x3(x)
        x = self.Conv2d_2a_3x3(x)
        x = self.Conv2d_2b_3x3(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_3b_1x1(x)
        x = self.Conv2d_4a_3x3(x)
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        features = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        if self.fc is None or logits is False:
            return features, None
        return features, self.fc(features)

    def classifier_weight(self) -> torch.Tensor:
        """The classifier's weight (1008, 2048); a CheckpointError when the weights have none."""
        if self.fc is None:
            raise CheckpointError(NO_LOGITS)
        return self.fc.weight

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """The 1008-way logits; a CheckpointError when the weights have no classifier."""
        return self(images, logits=True)[1]
