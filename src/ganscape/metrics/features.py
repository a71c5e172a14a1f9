"""Inception features of image batches: the one forward pass that FID, KID, IS and precision/recall share.

The input convention is part of every score's protocol, so it is named and recorded:

* ``"tf"`` (the default): images are quantized to 8 bits exactly as saving them to PNG would
  (``round((x + 1) * 127.5)``), then scaled as the TF graph does, ``(p - 128) / 128``, and resized to
  299x299 with TF1's bilinear resize (no half-pixel centres). This is the input of the original TF
  FID/IS code and of torch-fidelity, so scores agree with theirs on the same images and weights.
* ``"pytorch_fid"``: the same 8-bit images scaled to ``2 p / 255 - 1`` and resized with
  ``F.interpolate(mode="bilinear", align_corners=False)``, as pytorch-fid does.
* ``"clean"``: clean-fid's default mode: the 8-bit images themselves are resized to 299x299 with PIL's
  antialiased bicubic filter, each channel as a float image, clipped to [0, 255], then scaled as the
  TF graph does, ``(p - 128) / 128`` (:func:`~ganscape.metrics.inception.resize_pil_bicubic`).

Quantizing generated images makes the score of a generator equal the score of its saved samples,
and real and generated images then go through identical steps. Grayscale images are repeated to
three channels.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from tqdm import tqdm

from ganscape.errors import lookup
from ganscape.metrics.inception import FIDInception, resize_pil_bicubic

# name -> (resize mode of FIDInception, description recorded in every protocol)
INCEPTION_INPUTS = {
    "tf": ("tf1", "8-bit images, (p - 128) / 128, TF1 bilinear resize to 299x299 (TF FID code, torch-fidelity)"),
    "pytorch_fid": ("bilinear", "8-bit images, 2 p / 255 - 1, torch bilinear resize to 299x299 (pytorch-fid)"),
    "clean": ("none", "8-bit images resized to 299x299 by PIL's antialiased bicubic per channel in float, clipped "
                      "to [0, 255], then (p - 128) / 128 (clean-fid's clean mode)"),
}


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] as the 8-bit pixels a PNG of them would hold (round half to even, clamped)."""
    return ((images.detach().float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)


def inception_input(images: torch.Tensor, kind: str = "tf") -> torch.Tensor:
    """Float network input for images in [-1, 1] (N, 1 or 3, H, W), under the convention ``kind``."""
    lookup(INCEPTION_INPUTS, kind, "Inception input convention")
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected images (N, 1 or 3, H, W), got {tuple(images.shape)}")
    pixels = to_uint8(images).float()
    if pixels.shape[1] == 1:
        pixels = pixels.expand(-1, 3, -1, -1)
    if kind == "clean":  # clean-fid resizes the 8-bit pixels, before scaling them
        pixels = resize_pil_bicubic(pixels)
    return pixels * (2 / 255) - 1 if kind == "pytorch_fid" else (pixels - 128) / 128


def inception_features(batches: Iterable[torch.Tensor], inception: FIDInception, kind: str = "tf",
                       with_logits: bool = False, total: int | None = None, desc: str = "features",
                       progress: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Pool features (N, 2048) and, with ``with_logits``, logits (N, 1008) of all images in ``batches``.

    The logits are those of the Inception Score's original code (and torch-fidelity's): the pool
    features times the classifier's weight, *without* its bias, which the TF IS code leaves out.

    ``batches`` yields images in [-1, 1] on any device; each batch is moved to the network's device.
    Results are float32 on the CPU. ``total`` (the image count) sizes the progress bar. The network
    is set to the convention's resize and to channels-last layout, which is faster on CPUs and GPUs
    alike and gives the same features to float rounding.
    """
    inception.resize = lookup(INCEPTION_INPUTS, kind, "Inception input convention")[0]
    device = next(inception.parameters()).device
    inception.to(memory_format=torch.channels_last)
    features, logits = [], []
    with torch.inference_mode(), tqdm(total=total, desc=desc, unit="img", disable=not progress,
                                      dynamic_ncols=True) as bar:
        for images in batches:
            x = inception_input(images.to(device), kind).contiguous(memory_format=torch.channels_last)
            pool, _ = inception(x, logits=False)
            features.append(pool.float().cpu())
            if with_logits:
                logits.append((pool @ inception.classifier_weight().T).float().cpu())
            bar.update(len(images))
    if not features:
        raise ValueError("inception_features: no images were given")
    return torch.cat(features), torch.cat(logits) if with_logits else None


def batched(images: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
    """``images`` in consecutive batches of at most ``batch_size``."""
    yield from images.split(batch_size)
