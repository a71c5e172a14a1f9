"""Self-attention (Zhang et al., SAGAN), as BigGAN places it in G and D at chosen resolutions.

For a feature map x with C channels and N = H W positions: queries q = Wq x (C/8 channels, every
position), keys k = maxpool2(Wk x) (C/8 channels, N/4 positions), values v = maxpool2(Wv x) (C/2
channels, N/4 positions), all 1x1 convolutions without bias. Each position attends over the pooled
positions, softmax_j(q_i . k_j); the attended values go through a last 1x1 convolution Wo back to C
channels and are added to the input with a learned gain gamma that starts at 0, so the block starts
as the identity and the network learns how much non-local evidence to use.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SelfAttention(nn.Module):
    """x + gamma * Wo(attended values); ``conv`` builds the 1x1 convolutions (spectrally normalised in BigGAN)."""

    def __init__(self, channels: int, conv=nn.Conv2d):
        super().__init__()
        if channels % 8:
            raise ValueError(f"self-attention needs a channel count divisible by 8, not {channels}")
        self.query = conv(channels, channels // 8, kernel_size=1, bias=False)
        self.key = conv(channels, channels // 8, kernel_size=1, bias=False)
        self.value = conv(channels, channels // 2, kernel_size=1, bias=False)
        self.out = conv(channels // 2, channels, kernel_size=1, bias=False)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor, condition=None) -> torch.Tensor:
        b, c, h, w = x.shape
        q = self.query(x).flatten(2)  # (B, C/8, N)
        k = F.max_pool2d(self.key(x), 2).flatten(2)  # (B, C/8, N/4)
        v = F.max_pool2d(self.value(x), 2).flatten(2)  # (B, C/2, N/4)
        weights = torch.softmax(q.transpose(1, 2) @ k, dim=-1)  # (B, N, N/4): position i over pooled j
        attended = (v @ weights.transpose(1, 2)).view(b, c // 2, h, w)
        return x + self.gamma * self.out(attended)
