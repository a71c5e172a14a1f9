"""Whether the generator settles: two measures logged at every log row when ``log.convergence`` is on.

Mescheder et al. (2018) call a GAN's training convergent when the players come to rest at an equilibrium
where D is flat on the data. Two numbers say how far a run is from that, row by row of metrics.jsonl:

``convergence/g_move``
    How far G's parameters moved since the previous row, per G update: ``||theta_t - theta_s|| / (t - s)``
    with ``theta`` every parameter of the trained (not the averaged) generator flattened into one vector,
    ``t`` this row's step and ``s`` the previous row's. An absolute L2 distance, not relative to
    ``||theta||``: groups of one study share the architecture, so their values compare directly. A
    generator that settles moves ever less; one that circles an equilibrium (the unregularized Dirac-GAN)
    keeps moving the same distance.
``convergence/d_grad_real``
    The root-mean-square gradient norm of D at real data, ``sqrt(mean_i ||grad_x D(x_i)||^2)``, on the data
    as D sees them before augmentation and instance noise (the data pixel scale). It is 0 at Mescheder's
    equilibrium, and it is what R1 penalises (R1 = 1/2 of its square).

Cheap and invisible to training: D's input gradient is taken once per row, on a fixed batch of
``train.batch_size`` reals drawn once from a stream of its own (``derived_seed(seed, "convergence")``), in
D's training mode (as the penalties see it) with D's buffers (batch-norm statistics, spectral-norm vectors)
and torch's global random state restored afterwards; no parameter gradient is accumulated. So a run logs
the same and checkpoints the same tensors with the key on or off. Every process of a torchrun run computes
the measures (a synchronised batch norm needs them all); process 0 logs them.

Resuming: the previous row's parameters are not checkpointed; a resumed run takes the parameters of the step
it resumes from instead. When that step is a log step (``checkpoint.every`` a multiple of ``log.every``, the
usual case) the first row after the resume is exactly that of a run never stopped; otherwise it reports the
movement since the resumed step, per update since then.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from ganscape.config import Experiment
from ganscape.objectives.penalties import input_gradient
from ganscape.training.speed import as_layout
from ganscape.training.state import GANState, derived_seed


def flat_parameters(module: nn.Module) -> torch.Tensor:
    """Every parameter of ``module`` as one detached vector (a copy)."""
    return torch.cat([p.detach().flatten() for p in module.parameters()]).clone()


def parameter_move(now: torch.Tensor, before: torch.Tensor, updates: int) -> float:
    """The L2 distance between two parameter vectors divided by the updates between them."""
    return float((now.double() - before.double()).norm()) / updates


def rms_input_gradient(D: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> float:
    """``sqrt(mean_i ||grad_x D(x_i)||^2)`` on the data scale, D's training-time state left as it was."""
    with kept_as_is(D):
        squared = input_gradient(D, x, labels).detach().square().sum(dim=1)
    return float(squared.mean().sqrt())


@contextmanager
def kept_as_is(D: nn.Module):
    """Within: a forward pass of D in its training mode that changes nothing training sees afterwards (its
    buffers, e.g. batch-norm running statistics or spectral norm's power-iteration vectors, and torch's global
    random state, e.g. for dropout, are restored)."""
    buffers = [(b, b.detach().clone()) for b in D.buffers()]
    device = next(D.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        try:
            yield
        finally:
            with torch.no_grad():
                for buffer, saved in buffers:
                    buffer.copy_(saved)


class ConvergenceProbe:
    """The measures of the module docstring for one run: its fixed real batch and G's parameters at the
    previous row (or at the step training started or resumed from)."""

    def __init__(self, real: torch.Tensor, labels: torch.Tensor | None, state: GANState):
        self.real, self.labels = real, labels
        self.previous, self.previous_step = flat_parameters(state.G), state.step

    @classmethod
    def for_run(cls, cfg: Experiment, data, state: GANState) -> ConvergenceProbe:
        """The probe of a run whose ``state`` is at the step it starts (or resumes) from."""
        stream = torch.Generator().manual_seed(derived_seed(cfg.train.seed, "convergence"))
        real, labels = data.sample(cfg.train.batch_size, stream)
        device = next(state.D.parameters()).device
        labels = labels.to(device) if cfg.data.conditional else None
        return cls(as_layout(real.to(device), state.channels_last), labels, state)

    def logged(self, state: GANState) -> dict[str, float]:
        """This row's ``convergence/g_move`` (absent when G made no update since the last row) and
        ``convergence/d_grad_real``; the row's parameters become the next row's previous ones."""
        values = {"convergence/d_grad_real": rms_input_gradient(state.D, self.real, self.labels)}
        now = flat_parameters(state.G)
        updates = state.step - self.previous_step
        if updates > 0:
            values["convergence/g_move"] = parameter_move(now, self.previous, updates)
        self.previous, self.previous_step = now, state.step
        return values
