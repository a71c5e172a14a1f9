"""One GAN objective: the configured loss and penalties turned into D's and G's totals.

The training step (``training.step``), the Dirac-GAN (``dynamics.dirac``) and the spectrum of a run
(``dynamics.spectrum``) all call ``Objective``, so what is analysed is what is trained. It returns
tensors (the totals, the unweighted terms and the logits); its callers choose backward, optimizer
steps and logging.

One objective turns (G, D, batches, latents, labels, D-input pipeline) into D's and G's totals. The
D-input pipeline (``objectives.d_input.DInput``: augmentation, instance noise) is applied by the caller,
which owns the pipeline's state and random streams: ``Objective`` receives the batches as D sees them
and transforms nothing. A step uses it in two parts:

* ``d_totals(D, real, fake, labels, generator, d_update=i)``: D's loss on the batches as D sees them
  plus every weighted d_loss penalty, computed on those same batches.
* ``g_totals(G, fake_logits)``: G's loss on D's logits of the fakes (as D saw them) plus every
  weighted g_loss penalty.

``constrain(D)`` applies the d_constraint penalties (WGAN weight clipping) after each D step.

Lazy regularization (StyleGAN2): with ``lazy_interval`` k > 1 the lazy penalties (``Penalty.lazy``: r1
and r2) are computed only on the D updates whose index (counted over the whole run) is a multiple of k,
with k times their weight, so that the penalty's gradient summed over any k consecutive updates at a
fixed D is exactly the dense one's. The other penalties act on every update. The penalty is added to
the same update's total (not a separate optimizer step, as StyleGAN2 takes), so no learning rate needs
correcting. Without an index (``d_update=None``: the dynamics' analyses) the objective is the dense one,
the lazy objective's expectation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ganscape.errors import ConfigError, lookup
from ganscape.objectives.losses import LOSSES, Loss
from ganscape.objectives.penalties import (D_CONSTRAINT, D_INPUT, D_LOSS, DATA_SCALE, G_LOSS, PENALTIES,
                                           PIXEL_SCALES, Penalty, PenaltyInputs, PixelScale)

Tensor = torch.Tensor


def at_least_float32(x: Tensor) -> Tensor:
    """``x`` in float32 when it is in a lower precision (bf16, fp16); float32 and float64 as they are."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


@dataclass(frozen=True)
class Totals:
    """One player's objective at one step: ``total`` is minimised; ``loss`` is the GAN loss alone;
    ``terms`` the unweighted value of each loss-term penalty by name. ``real_logits`` and
    ``fake_logits`` are D's outputs that the loss was computed from (``real_logits`` is None for G)."""

    total: Tensor
    loss: Tensor
    terms: dict[str, Tensor]
    real_logits: Tensor | None
    fake_logits: Tensor


@dataclass(frozen=True)
class Objective:
    """A loss with its penalties, each with its weight (the bound for the d_constraint kind).

    Transforms of D's inputs (instance noise) are not terms of the objective: a run applies them in its
    D-input pipeline (``augment.noise``), the Dirac-GAN plays them itself (``dynamics.dirac``).
    """

    loss: Loss
    penalties: tuple[tuple[Penalty, float], ...] = ()
    scale: PixelScale = DATA_SCALE  # where gradient penalties are measured
    lazy_interval: int = 1  # the lazy penalties act on every lazy_interval-th D update, weighted that many times

    def __post_init__(self):
        if self.lazy_interval < 1:
            raise ConfigError(f"penalty.lazy_interval must be >= 1 (1 computes every penalty on every D update), "
                              f"got {self.lazy_interval}.")
        for penalty, weight in self.penalties:
            if penalty.kind == D_INPUT:
                raise ConfigError(f"{penalty.name} transforms D's inputs and is not a term of the objective: "
                                  f"in a run's config it is augment.noise={weight:g} (the D-input pipeline).")

    @classmethod
    def from_config(cls, cfg) -> "Objective":
        """The objective of an ``Experiment``: ``loss``, ``penalty.use``, ``penalty.pixel_scale`` and
        ``penalty.lazy_interval``."""
        penalties = tuple((lookup(PENALTIES, term.name, "penalty"), term.weight) for term in cfg.penalty.use)
        return cls(lookup(LOSSES, cfg.loss, "loss"), penalties,
                   lookup(PIXEL_SCALES, cfg.penalty.pixel_scale, "pixel scale"), cfg.penalty.lazy_interval)

    @classmethod
    def of(cls, loss: str, penalties: dict[str, float] | None = None, **options) -> "Objective":
        """Build from names, e.g. ``Objective.of("ns", {"r1": 1.0})``."""
        return cls(lookup(LOSSES, loss, "loss"),
                   tuple((lookup(PENALTIES, name, "penalty"), weight) for name, weight in (penalties or {}).items()),
                   **options)

    def of_kind(self, kind: str) -> list[tuple[Penalty, float]]:
        return [(penalty, weight) for penalty, weight in self.penalties if penalty.kind == kind]

    def weight(self, name: str) -> float:
        """The weight of penalty ``name``, 0 when it is not used."""
        return sum(weight for penalty, weight in self.penalties if penalty.name == name)

    def acting(self, kind: str, d_update: int | None = None) -> list[tuple[Penalty, float]]:
        """The penalties of ``kind`` that act at D update ``d_update``, with their effective weights: a lazy
        penalty only where ``d_update`` is a multiple of ``lazy_interval``, then weighted ``lazy_interval``
        times; every penalty at its own weight when ``d_update`` is None (the dense objective)."""
        if d_update is None or self.lazy_interval == 1:
            return self.of_kind(kind)
        regularizing = d_update % self.lazy_interval == 0
        return [(penalty, weight * self.lazy_interval if penalty.lazy else weight)
                for penalty, weight in self.of_kind(kind) if regularizing or not penalty.lazy]

    @staticmethod
    def _weighted(penalties: list[tuple[Penalty, float]], inputs: PenaltyInputs,
                  loss: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        terms = {penalty.name: penalty.apply(inputs) for penalty, _ in penalties}
        total = loss + sum(weight * terms[penalty.name] for penalty, weight in penalties)
        return total, terms

    def d_totals(self, D: Callable[..., Tensor], real: Tensor, fake: Tensor, labels: Tensor | None,
                 generator: torch.Generator | None, fused: bool = False,
                 penalty_D: Callable[..., Tensor] | None = None, d_update: int | None = None) -> Totals:
        """D's objective on ``real`` and ``fake`` as D sees them (after the caller's D-input pipeline).

        ``fake`` may keep its graph to G (the dynamics need how D's objective changes with G);
        the penalties detach the points they are evaluated at. ``fused``: one call of D on the real
        and generated batches concatenated (the same logits when D has no batch-dependent layer, and
        faster; a spectrally normalised D then refines its u once per update, as BigGAN-PyTorch's
        ``G_D`` does, instead of once per call). ``penalty_D`` evaluates the penalties (default ``D``):
        an eager D where ``D`` is compiled, since torch.compile does not take double backward.
        Logits reach the loss in float32 at least, whatever precision D ran in (bf16 autocast).
        ``d_update``: the run's index of this D update, which decides whether the lazy penalties act
        (``acting``); None gives the dense objective. ``terms`` holds only the penalties computed.
        """
        if fused:
            both = D(torch.cat([real, fake]), None if labels is None else torch.cat([labels, labels]))
            real_logits, fake_logits = at_least_float32(both).split([len(real), len(fake)])
        else:
            real_logits, fake_logits = at_least_float32(D(real, labels)), at_least_float32(D(fake, labels))
        loss = self.loss.d_loss(real_logits, fake_logits)
        inputs = PenaltyInputs(penalty_D or D, None, real, fake, labels, generator, self.scale)
        total, terms = self._weighted(self.acting(D_LOSS, d_update), inputs, loss)
        return Totals(total, loss, terms, real_logits, fake_logits)

    def g_totals(self, G: nn.Module | None, fake_logits: Tensor) -> Totals:
        """G's objective from D's logits of the generated batch (as D saw it), in float32 at least."""
        fake_logits = at_least_float32(fake_logits)
        loss = self.loss.g_loss(fake_logits)
        inputs = PenaltyInputs(None, G, None, None, None, None, self.scale)
        total, terms = self._weighted(self.of_kind(G_LOSS), inputs, loss)
        return Totals(total, loss, terms, None, fake_logits)

    def constrain(self, D: nn.Module) -> None:
        """Apply every d_constraint (WGAN weight clipping) to D's weights, in place."""
        for penalty, bound in self.of_kind(D_CONSTRAINT):
            penalty.apply(D, bound)

    def describe(self) -> str:
        """E.g. "ns + r1 (weight 1)"."""
        return " + ".join([self.loss.name, *(f"{p.name} (weight {w:g})" for p, w in self.penalties)])
