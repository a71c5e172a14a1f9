"""Catching a diverging run: non-finite losses, parameters, EMA weights or optimizer state.

Every step's values (losses, penalties) are checked on the device and read at log, checkpoint, picture
and evaluation steps (``LossMonitor``), which still names the first bad step; the whole state, which is
larger, at every log step and before every checkpoint, so that a broken state never replaces a good
checkpoint. The diagnosis names the step, the quantities and the newest
checkpoint that is intact.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist

from ganscape.errors import CheckpointError, DivergenceError
from ganscape.store.checkpoint import list_checkpoints, load_checkpoint
from ganscape.training.distributed import SINGLE, Processes
from ganscape.training.state import GANState

ADVICE = ("Try a lower learning rate (g_opt.lr, d_opt.lr), a different loss, or more discriminator regularization, "
          "then start again or resume from the checkpoint.")


def _optimizer_tensors(optimizer: torch.optim.Optimizer):
    for index, slots in optimizer.state_dict()["state"].items():
        for slot, value in slots.items():
            if isinstance(value, torch.Tensor):
                yield f"{index}.{slot}", value


def nonfinite_state(state: GANState) -> list[str]:
    """The names of every NaN or infinite tensor of G, D, the EMA and both optimizers' states."""
    named = [(f"G.{n}", p) for n, p in state.G.named_parameters()]
    named += [(f"D.{n}", p) for n, p in state.D.named_parameters()]
    if state.ema is not None:
        named += [(f"G_ema.{n}", t) for n, t in state.ema.model.state_dict().items() if t.is_floating_point()]
    named += [(f"opt_g.{n}", t) for n, t in _optimizer_tensors(state.opt_g)]
    named += [(f"opt_d.{n}", t) for n, t in _optimizer_tensors(state.opt_d)]
    return [name for name, tensor in named if tensor.is_floating_point() and not torch.isfinite(tensor).all()]


def last_intact_checkpoint(folder) -> str:
    """A sentence naming the newest checkpoint that loads and passes its checksums."""
    for step, path in reversed(list_checkpoints(folder)):
        try:
            load_checkpoint(path)
        except CheckpointError:
            continue
        return f"The last good checkpoint is {path} (step {step}); it was not touched."
    return "No intact checkpoint had been written yet."


def diverged(step: int, what: list[str], folder) -> DivergenceError:
    shown = ", ".join(what[:5]) + (f" and {len(what) - 5} more" if len(what) > 5 else "")
    return DivergenceError(f"training diverged at step {step}: {shown}. {last_intact_checkpoint(folder)} {ADVICE}")


class LossMonitor:
    """The values a step returns (losses, penalties, logits), kept on the training device and read only when
    asked (at log, checkpoint, picture and evaluation steps), so that steps never wait for the device.

    The non-finite check stays exact: every step folds "not all finite" into an on-device record of the
    first such step and its values, which ``read`` turns into the diagnosis. A value that a step does not
    return (a lazy penalty that it skipped, ``penalty.lazy_interval``) keeps the last one recorded; a name
    first returned by a later step (such a penalty after a resume) is read from then on.
    """

    def __init__(self):
        self.names: list[str] = []
        self.by_name: dict[str, torch.Tensor] = {}  # the latest value of every name recorded so far
        self.latest: torch.Tensor | None = None  # the same, stacked in the order of ``names``
        self.first_bad: torch.Tensor | None = None  # step number, -1 while every value was finite
        self.bad_values: torch.Tensor | None = None

    def record(self, step: int, stats: dict[str, torch.Tensor]) -> None:
        self.by_name |= {name: value.float() for name, value in stats.items()}
        values = torch.stack(list(self.by_name.values()))
        if self.latest is None:
            self.first_bad = torch.full((), -1, dtype=torch.int64, device=values.device)
            self.bad_values = torch.zeros_like(values)
        elif len(values) > len(self.bad_values):  # new names come last (dicts keep their insertion order)
            self.bad_values = torch.cat([self.bad_values, values.new_zeros(len(values) - len(self.bad_values))])
        self.names = list(self.by_name)
        newly_bad = (self.first_bad < 0) & ~torch.isfinite(values).all()
        self.first_bad = torch.where(newly_bad, step, self.first_bad)
        self.bad_values = torch.where(newly_bad, values, self.bad_values)
        self.latest = values

    def read(self, state: GANState, folder, processes: Processes = SINGLE) -> dict[str, float]:
        """The latest step's values (averaged over the processes); stops with a diagnosis naming the first step
        whose values were not all finite in any process (the networks' non-finite parameters too)."""
        latest, first_bad = self.latest, self.first_bad
        if processes.many:  # all processes see the same first bad step, and so stop together
            latest = latest.clone()
            dist.all_reduce(latest)
            latest /= processes.world
            first_bad = torch.where(first_bad < 0, torch.iinfo(torch.int64).max, first_bad)
            dist.all_reduce(first_bad, op=dist.ReduceOp.MIN)
            first_bad = torch.where(first_bad == torch.iinfo(torch.int64).max, -1, first_bad)
        latest, first_bad, bad = latest.tolist(), int(first_bad.item()), self.bad_values.tolist()
        if first_bad >= 0:
            what = [f"{name} = {value}" for name, value in zip(self.names, bad) if not math.isfinite(value)]
            params = [name for name in nonfinite_state(state) if name.startswith(("G.", "D."))]
            if first_bad != state.step:
                what.append(f"noticed at step {state.step}")
            raise diverged(first_bad, what + ([f"non-finite parameters {', '.join(params[:5])}"] if params else []),
                           folder)
        return dict(zip(self.names, latest))


def check_state(state: GANState, folder, since: int) -> None:
    """Stop with a diagnosis when any tensor of the state is NaN or infinite (checked at intervals: it
    went bad after step ``since``)."""
    bad = nonfinite_state(state)
    if bad:
        raise diverged(state.step, [f"non-finite state (after step {since}): {', '.join(bad[:5])}"
                                    + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")], folder)
