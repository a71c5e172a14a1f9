"""The gradient vector field that a training step follows, built from the registered losses and penalties.

Both players' objectives come from ``Objective``, the same code that ``training.step.train_step``
minimises: D's loss plus its weighted penalties, and G's loss plus its weighted penalties. The field of
the game is therefore

    v(theta, psi) = (-d/dtheta G's objective, -d/dpsi D's objective),

the direction in which gradient descent with step size 1 moves both players. For the minimax loss it is
the ``(-grad_theta L, grad_psi L)`` of Mescheder et al. (2018).

The field is computed with ``torch.autograd.grad(create_graph=True)``, so it can be differentiated again
(its Jacobian, consensus optimization). ``torch.func`` transforms cannot be used: the gradient penalties
call ``torch.autograd.grad`` on a fresh leaf themselves, which those transforms refuse.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from ganscape.objectives.objective import Objective

Tensor = torch.Tensor


def requiring_grad(x: Tensor) -> Tensor:
    """``x`` itself when it is already part of a graph, else a detached leaf that requires grad."""
    return x if x.requires_grad else x.detach().requires_grad_(True)


def game_totals(objective: Objective, D: Callable[..., Tensor], real: Tensor, fake: Tensor,
                labels: Tensor | None = None, G: nn.Module | None = None,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """(G's total, D's total) on one batch, as ``train_step`` computes them.

    ``real`` and ``fake`` are the batches as D sees them (instance noise already in them). ``fake``
    must keep its graph to G's parameters: the field's Jacobian needs how D's gradient changes with G.
    G's loss reads D's logits of this same ``fake``.
    """
    d = objective.d_totals(D, real, fake, labels, generator)
    return objective.g_totals(G, d.fake_logits).total, d.total


def gradient_field(g_obj: Tensor, d_obj: Tensor, g_params: Sequence[Tensor], d_params: Sequence[Tensor]) -> Tensor:
    """The flat field ``-(dg_obj/dg_params, dd_obj/dd_params)``, differentiable again."""
    g_grads = torch.autograd.grad(g_obj, list(g_params), create_graph=True, materialize_grads=True)
    d_grads = torch.autograd.grad(d_obj, list(d_params), create_graph=True, materialize_grads=True)
    return -torch.cat([grad.reshape(-1) for grad in (*g_grads, *d_grads)])
