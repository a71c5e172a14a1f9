"""How far a float32 result may be from the same computation in float64 (a module beside conftest.py).

The bound is derived from float32 rounding, not observed on one machine: each sum of K products rounds with
an error of about sqrt(K) * eps32 relative to the size of its terms (rounding errors of either sign add up
like a random walk), and a chain of L such layers, none of which amplifies relative errors much (weights
of norm about 1, normalised activations), adds its layers' errors: L * sqrt(K) * eps32, norm-wise. CPU
kernels (AVX-512, AVX2, plain C) differ only in the order in which they sum, which the bound does not depend
on. Longer sums over batch statistics are summed in a cascade by PyTorch, whose error grows with log K.
"""

from __future__ import annotations

import math

import torch
from torch import nn

EPS32 = torch.finfo(torch.float32).eps  # 2**-23


def float32_bound(layers: int, terms: int) -> float:
    """Norm-wise relative error of a float32 chain of ``layers`` sums of up to ``terms`` products each."""
    return layers * math.sqrt(terms) * EPS32


def network_bound(net: nn.Module) -> float:
    """``float32_bound`` of a forward pass: every Linear and Conv2d a layer, its longest sum the widest fan-in."""
    layers = [m for m in net.modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    return float32_bound(len(layers), max(m.weight[0].numel() for m in layers))


def assert_float32_close(got: torch.Tensor, exact: torch.Tensor, bound: float, what: str = "",
                         scale: float = 0.0) -> None:
    """||got - exact|| <= bound * max(||exact||, scale): ``got`` computed in float32, ``exact`` in float64.

    ``scale`` is the size of the terms where they may cancel to an exact value of 0."""
    error = float((got.double() - exact.double()).norm())
    allowed = bound * max(float(exact.double().norm()), scale)
    assert error <= allowed, f"{what}: float32 error {error:.3g} exceeds the bound {allowed:.3g}"
