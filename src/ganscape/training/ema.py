"""Exponential moving average of generator weights (used for sampling and evaluation)."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Keeps ``avg = decay * avg + (1 - decay) * weights`` after each generator step.

    Before ``start`` steps the average simply copies the weights, so that it does not carry the
    random initialisation. Buffers (such as batch-norm statistics) are copied, not averaged.
    """

    def __init__(self, model: nn.Module, decay: float, start: int = 0):
        self.decay = decay
        self.start = start
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        weight = 1.0 - self.decay if step >= self.start else 1.0
        for avg, param in zip(self.model.parameters(), model.parameters()):
            avg.lerp_(param, weight)
        for avg, buf in zip(self.model.buffers(), model.buffers()):
            avg.copy_(buf)
