"""The work a run does: its budget in the unit of ``train.unit``, and the updates and FLOPs done so far.

A training step (``GANState.step``) is ``n_disc`` discriminator updates and one generator update, and
every step number (checkpoints, logs, ``--until``) counts steps. ``train.unit: d`` gives ``train.steps``
and the step intervals in D updates instead, the GAN Landscape's unit (compare_gan's ``training_steps``):
``in_g_updates`` turns such a config into steps, which the loop trains on, while config.yaml keeps what
was written.

``WorkCounter`` says how much work the steps done so far are: G updates, D updates and GFLOPs, the
last measured by ``torch.utils.flop_counter.FlopCounterMode`` on the first step after the run starts
or resumes (the real step: the counter passes every operation through unchanged) and multiplied by the
number of steps. FlopCounterMode counts the matrix products and convolutions of the forward and backward
passes, the operations that dominate a step's cost; element-wise work (activations, optimizers) is left
out. A branch that changes ``n_disc`` is counted as if its whole history had its ``n_disc``.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Callable, TypeVar

from torch.utils.flop_counter import FlopCounterMode

from ganscape.config import Experiment
from ganscape.errors import GanscapeWarning

Result = TypeVar("Result")


def steps_for(d_updates: int, n_disc: int) -> int:
    """The training steps that do ``d_updates`` D updates with ``n_disc`` per step, rounded up (0 stays 0)."""
    return -(-d_updates // n_disc)


def in_g_updates(cfg: Experiment) -> Experiment:
    """``cfg`` with ``train.steps`` and the step intervals counted in training steps (generator updates).

    A config with ``train.unit: g`` is returned as it is. With ``d`` a copy with unit ``g`` is returned whose
    ``train.steps``, ``train.ema_start``, ``log.every``, ``log.samples_every``, ``log.spectra_every``,
    ``eval.every`` and ``checkpoint.every`` are divided by ``train.n_disc`` and rounded up, so the run does at
    least the D updates asked for (steps=10 with n_disc=3: 4 steps, 12 D updates); 0 stays 0 (no sample pictures).
    """
    if cfg.train.unit == "g":
        return cfg
    n_disc = cfg.train.n_disc

    def steps(d_updates: int) -> int:
        return steps_for(d_updates, n_disc)

    return replace(cfg, train=replace(cfg.train, unit="g", steps=steps(cfg.train.steps),
                                      ema_start=steps(cfg.train.ema_start)),
                   log=replace(cfg.log, every=steps(cfg.log.every), samples_every=steps(cfg.log.samples_every),
                               spectra_every=steps(cfg.log.spectra_every)),
                   eval=replace(cfg.eval, every=steps(cfg.eval.every)),
                   checkpoint=replace(cfg.checkpoint, every=steps(cfg.checkpoint.every)))


class _WholeStep:
    """FlopCounterMode's module tracker replaced: every FLOP counts for the whole step ("Global"). The tracker's
    hooks on backward passes fail inside ``torch.autograd.grad`` (the gradient penalties), and only the total
    is needed."""

    parents = frozenset({"Global"})

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        return None


def flop_counter() -> FlopCounterMode:
    """A FlopCounterMode that counts the total only (see ``_WholeStep``) and prints nothing."""
    counter = FlopCounterMode(display=False)
    counter.mod_tracker = _WholeStep()
    return counter


def with_flops(step: Callable[[], Result]) -> tuple[Result, float | None]:
    """``step()``'s result and the GFLOPs FlopCounterMode counted in it; None when the counter cannot start
    (a warning says why: the step then runs uncounted)."""
    counter = flop_counter()
    try:
        counter.__enter__()
    except Exception as err:  # noqa: BLE001 - any failure of the counter leaves training as it is
        warnings.warn(f"the FLOPs of a training step are not counted: {type(err).__name__}: {err}",
                      GanscapeWarning, stacklevel=2)
        return step(), None
    try:
        result = step()
    finally:
        counter.__exit__(None, None, None)
    return result, counter.get_total_flops() / 1e9


class WorkCounter:
    """The work done by a run's steps: ``run`` runs each step, counting the FLOPs of the first one where
    ``countable`` (not under torch.compile, whose compiled code the counter does not see, nor under
    torchrun, where each process does a part of a step)."""

    def __init__(self, n_disc: int, countable: bool):
        self.n_disc = n_disc
        self.to_count = countable
        self.step_gflops: float | None = None

    @classmethod
    def for_run(cls, cfg: Experiment, many_processes: bool) -> "WorkCounter":
        return cls(cfg.train.n_disc, countable=not cfg.train.compile and not many_processes)

    def run(self, step: Callable[[], Result]) -> Result:
        """``step()``; the first one after the counter was made under FlopCounterMode."""
        if not self.to_count:
            return step()
        self.to_count = False
        result, self.step_gflops = with_flops(step)
        return result

    def totals(self, step: int) -> dict[str, int | float | None]:
        """The work of ``step`` steps: ``g_updates``, ``d_updates`` and ``gflops`` (None when not counted)."""
        gflops = None if self.step_gflops is None else step * self.step_gflops
        return {"g_updates": step, "d_updates": step * self.n_disc, "gflops": gflops}

    def logged(self, step: int) -> dict[str, int | float]:
        """``totals`` as a log row's ``work/...`` values (``work/gflops`` only when counted)."""
        return {f"work/{name}": value for name, value in self.totals(step).items() if value is not None}
