"""Test inputs for the FID Inception: random weights in the real file format, and varied images.

(A module beside conftest.py, so that tests in any folder under tests/ can import it.)
"""

from __future__ import annotations

import torch

from ganscape.metrics.inception import FIDInception


def random_fid_inception_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """A FIDInception state dict with seeded random values that keep activations in a sane range.

    Convolutions: He initialisation N(0, 2 / fan_in), which keeps the second moment through ReLUs.
    Batch norm: weight U(0.8, 1.2) (the TF graph has no scale, so the real file holds ones; random
    values make the test see whether it is read), bias N(0, 0.1), running_mean N(0, 0.1),
    running_var U(0.5, 1.5). Classifier: N(0, 1 / 2048) weights, N(0, 0.1) bias.
    """
    generator = torch.Generator().manual_seed(seed)
    state = FIDInception(with_logits=True).state_dict()
    with torch.no_grad():
        for name, tensor in state.items():
            shape = tensor.shape
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("conv.weight"):
                tensor.copy_(torch.randn(shape, generator=generator) * (2.0 / tensor[0].numel()) ** 0.5)
            elif name.endswith("bn.weight"):
                tensor.copy_(0.8 + 0.4 * torch.rand(shape, generator=generator))
            elif name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(shape, generator=generator))
            elif name == "fc.weight":
                tensor.copy_(torch.randn(shape, generator=generator) / shape[1] ** 0.5)
            else:  # bn.bias, bn.running_mean, fc.bias
                tensor.copy_(0.1 * torch.randn(shape, generator=generator))
    return state


def smooth_images(count: int, height: int, width: int, seed: int) -> torch.Tensor:
    """uint8 images (count, 3, height, width): random 4x4 colour fields upsampled, plus pixel noise.

    Smooth structure varies from image to image, so the pooled features of different images differ
    (pure pixel noise averages out to nearly the same pooled features for every image).
    """
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(count, 3, 4, 4, generator=generator)
    field = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    noise = 0.08 * torch.randn(count, 3, height, width, generator=generator)
    return ((field + noise).clamp(0, 1) * 255).round().to(torch.uint8)
