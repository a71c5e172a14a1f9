"""Mode counting on stacked digits (stacked MNIST: three digits as R, G, B, 1,000 modes).

A small CNN classifies one 32x32 single-channel digit with values in [-1, 1], the format of the
``digits`` and ``mnist`` data sets. Its weights ship with the package (``weights/``, written by
``scripts/train_digit_classifiers.py``, which records their held-out accuracy and provenance in
``weights/classifiers.json``): ``"digits"`` is trained on scikit-learn's digits (the ``digits``
train split), ``"mnist"`` on 8,000 images of the MNIST test set.

Definitions (those of the stacked-MNIST benchmark: Metz et al. 2017, VEEGAN, PacGAN):

- Each channel of a sample is classified on its own; the sample's **mode** is the triple of
  predicted digits (r, g, b), numbered 100 r + 10 g + b.
- A mode is **covered** when at least one sample is classified into it; ``modes_covered`` is the
  number of distinct predicted modes.
- ``kl_to_uniform`` is KL(p || u) = sum_k p_k log(K p_k), where p is the histogram of predicted
  modes over the K = 1,000 modes and u is uniform: 0 when every mode receives the same share,
  log K - log m when the samples are spread evenly over m modes, log K for a single mode.

How they differ from the 2-D mixture metrics of ``modes.py``: every sample is assigned a mode
(there is no distance threshold, hence no "high quality" share and no infinite KL), and one sample
suffices to cover a mode, where the mixtures ask for 1% of all samples. With n uniform samples the
expected number of covered modes is K (1 - (1 - 1/K)^n), about 1,000 for n = 10,000; the KL of
a finite sample is positive even for real data, about (K - 1) / (2n) = 0.05 for n = 10,000.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from ganscape.errors import CheckpointError, lookup

WEIGHTS_DIR = Path(__file__).with_name("weights")
WEIGHTS = {"digits": "digits.safetensors", "mnist": "mnist.safetensors"}
METADATA = "classifiers.json"  # held-out accuracy and provenance of each weights file
RESOLUTION = 32


class DigitClassifier(nn.Module):
    """Three stride-2 conv + ReLU stages (32 -> 16 -> 8 -> 4 pixels), then a linear layer.

    Input: (N, 1, 32, 32) in [-1, 1]. Output: (N, 10) logits. About 34,000 parameters and 0.7
    million multiply-adds per digit: strides instead of pooling keep it fast on a CPU.
    """

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(0.25), nn.Linear(64 * 4 * 4, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def to_classifier_input(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] at any size -> 32x32, resized as the image data sets resize (bilinear, antialiased)."""
    if tuple(x.shape[-2:]) == (RESOLUTION, RESOLUTION):
        return x
    x = F.interpolate(x, size=(RESOLUTION, RESOLUTION), mode="bilinear", antialias=True, align_corners=False)
    return x.clamp(-1.0, 1.0)


def load_digit_classifier(kind: str, path: Path | str | None = None) -> DigitClassifier:
    """The shipped classifier ``kind`` ("digits" or "mnist") in eval mode, on the CPU.

    ``path`` reads another weights file instead of the shipped one. Only tensors are read
    (safetensors); a missing, corrupt or mismatched file raises a CheckpointError naming it.
    """
    path = Path(path) if path is not None else WEIGHTS_DIR / lookup(WEIGHTS, kind, "digit classifier")
    if not path.is_file():
        raise CheckpointError(f"digit classifier weights {path} do not exist; "
                              f"scripts/train_digit_classifiers.py writes them.")
    model = DigitClassifier()
    try:
        model.load_state_dict(load_file(str(path), device="cpu"))
    except Exception as err:  # safetensors, OS and state-dict errors all mean the same thing here
        raise CheckpointError(f"digit classifier weights {path} are corrupt or do not fit: {err}") from None
    return model.eval().requires_grad_(False)


@torch.no_grad()
def classify_digits(images: torch.Tensor, classifier: nn.Module, batch_size: int = 1024) -> torch.Tensor:
    """Predicted digits (N,) int64 on the CPU of single-channel images (N, 1, H, W) in [-1, 1].

    Runs in batches on the classifier's device, in eval mode (the classifier's mode is restored).
    """
    device = next(classifier.parameters()).device
    was_training = classifier.training
    classifier.eval()
    try:
        predictions = [classifier(to_classifier_input(batch.to(device, torch.float32))).argmax(1).cpu()
                       for batch in images.split(batch_size)]
    finally:
        classifier.train(was_training)
    return torch.cat(predictions) if predictions else torch.zeros(0, dtype=torch.int64)


def classify_stacked(images: torch.Tensor, classifier: nn.Module, batch_size: int = 1024) -> torch.Tensor:
    """Predicted modes (N,) int64 of stacked digits (N, 3, H, W) in [-1, 1]: 100 r + 10 g + b."""
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"stacked digits must be (N, 3, H, W), got {tuple(images.shape)}")
    digits = classify_digits(images.detach().reshape(-1, 1, *images.shape[-2:]), classifier, batch_size)
    digits = digits.view(-1, 3)
    return 100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2]


def count_modes(images: torch.Tensor, classifier: nn.Module, num_modes: int = 1000,
                batch_size: int = 1024) -> dict[str, float]:
    """Covered modes and KL to uniform of stacked digits (N, 3, H, W) (see the module docstring)."""
    if len(images) == 0:
        raise ValueError("count_modes needs at least one sample")
    modes = classify_stacked(images, classifier, batch_size)
    if int(modes.max()) >= num_modes:
        raise ValueError(f"predicted mode {int(modes.max())} does not fit num_modes={num_modes}")
    counts = torch.bincount(modes, minlength=num_modes).to(torch.float64)
    p = counts[counts > 0] / counts.sum()
    return {
        "modes_covered": int((counts > 0).sum()),
        "num_modes": num_modes,
        "kl_to_uniform": float((p * (p * num_modes).log()).sum()),
    }
