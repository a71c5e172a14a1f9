"""The gradient vector field that a training step follows, built from the registered losses and penalties.

ganscape's discriminator minimises ``d_loss(real_logits, fake_logits)`` plus its weighted penalties, and
its generator minimises ``g_loss(fake_logits)`` plus its weighted penalties (``training.loop.train_step``).
The field of the game is therefore

    v(theta, psi) = (-d/dtheta G's objective, -d/dpsi D's objective),

the direction in which gradient descent with step size 1 moves both players. For the minimax loss it is
the ``(-grad_theta L, grad_psi L)`` of Mescheder et al. (2018).

The field is computed with ``torch.autograd.grad(create_graph=True)``, so it can be differentiated again
(its Jacobian, consensus optimization). ``torch.func`` transforms cannot be used: the gradient penalties
call ``torch.autograd.grad`` on a fresh leaf themselves, which those transforms refuse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import torch
from torch import nn

from ganscape.objectives.losses import Loss
from ganscape.objectives.penalties import d_penalty, g_penalty

if TYPE_CHECKING:
    from ganscape.training.loop import Regularizers

Tensor = torch.Tensor


def requiring_grad(x: Tensor) -> Tensor:
    """``x`` itself when it is already part of a graph, else a detached leaf that requires grad."""
    return x if x.requires_grad else x.detach().requires_grad_(True)


def objectives(loss: Loss, reg: Regularizers, D: Callable[..., Tensor], real: Tensor, fake: Tensor,
               labels: Tensor | None = None, G: nn.Module | None = None,
               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """(G's objective, D's objective) on one batch, as ``train_step`` computes them.

    D's objective adds the weighted ``reg.d_terms`` (computed on the batches exactly as given, so
    instance noise must already be in them), G's the weighted ``reg.g_terms``.
    ``fake`` must keep its graph to G's parameters: the field's Jacobian needs how D's gradient
    changes with G.
    """
    fake_logits = D(fake, labels)
    d_obj = loss.d_loss(D(real, labels), fake_logits)
    d_obj = d_obj + sum(weight * d_penalty(name, D, real, fake, labels, generator) for name, weight in reg.d_terms)
    g_obj = loss.g_loss(fake_logits) + sum(weight * g_penalty(name, G) for name, weight in reg.g_terms)
    return g_obj, d_obj


def gradient_field(g_obj: Tensor, d_obj: Tensor, g_params: Sequence[Tensor], d_params: Sequence[Tensor]) -> Tensor:
    """The flat field ``-(dg_obj/dg_params, dd_obj/dd_params)``, differentiable again."""
    g_grads = torch.autograd.grad(g_obj, list(g_params), create_graph=True, materialize_grads=True)
    d_grads = torch.autograd.grad(d_obj, list(d_params), create_graph=True, materialize_grads=True)
    return -torch.cat([grad.reshape(-1) for grad in (*g_grads, *d_grads)])
