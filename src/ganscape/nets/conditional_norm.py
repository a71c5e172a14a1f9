"""Conditional batch norm (de Vries et al.; Dumoulin et al.), as BigGAN's generator uses it.

The batch is normalised without a learned affine map; each sample's gain and bias come from its
condition instead: out = BN(x) * (1 + gain(c)) + bias(c). In BigGAN the condition is the shared
class embedding concatenated with the block's chunk of z, and gain and bias are linear maps of it
(without bias terms); without a shared embedding, they are per-class embeddings of the label. The
1 + makes a zero map mean "plain batch norm", which is where the gains start.
"""

from __future__ import annotations

import torch
from torch import nn

from ganscape.nets.common import class_embedding


class ConditionalBatchNorm2d(nn.Module):
    """BN(x) * (1 + gain(condition)) + bias(condition); ``condition`` is a vector per sample (``condition_dim``
    inputs, linear maps built by ``linear``) or, with ``num_classes``, a class index per sample (embeddings)."""

    def __init__(self, channels: int, condition_dim: int = 0, num_classes: int = 0, eps: float = 1e-5,
                 momentum: float = 0.1, linear=nn.Linear):
        super().__init__()
        if (condition_dim > 0) == (num_classes > 0):
            raise ValueError("a conditional batch norm takes either a condition vector (condition_dim) or a class "
                             "index (num_classes)")
        if num_classes:
            self.gain, self.bias = nn.Embedding(num_classes, channels), nn.Embedding(num_classes, channels)
            nn.init.zeros_(self.gain.weight), nn.init.zeros_(self.bias.weight)
        else:
            self.gain = linear(condition_dim, channels, bias=False)
            self.bias = linear(condition_dim, channels, bias=False)
        self.norm = nn.BatchNorm2d(channels, eps=eps, momentum=momentum, affine=False)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        if isinstance(self.gain, nn.Embedding):  # labels, or class mixtures (N, classes)
            gain, bias = 1 + class_embedding(self.gain, condition), class_embedding(self.bias, condition)
        else:
            gain, bias = 1 + self.gain(condition), self.bias(condition)
        return self.norm(x) * gain[:, :, None, None] + bias[:, :, None, None]
