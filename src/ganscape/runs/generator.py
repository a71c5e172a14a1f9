"""A run's trained generator, loaded from one of its checkpoints."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ganscape.config import Experiment
from ganscape.data.base import Dataset
from ganscape.errors import CheckpointError
from ganscape.nets import ModelSpec, build_generator
from ganscape.runs.rundir import as_run
from ganscape.store import rundir as store
from ganscape.training.sampling import checkpoint_spec
from ganscape.training.snapshots import load_run_checkpoint


def load_run_generator(run: str | Path | store.RunDir, step: int | None = None, ema: bool = True,
                       device: str | torch.device = "cpu",
                       data: Dataset | None = None) -> tuple[nn.Module, Experiment, int, ModelSpec]:
    """The generator of a run's checkpoint (the newest, or at ``step``), in eval mode, built from the spec
    in the checkpoint: the run's data set is not needed.

    ``ema`` picks the EMA weights when the run kept them. Returns (G, config, step, spec).
    """
    run = as_run(run)
    cfg = run.read_config()
    step, path = run.checkpoint_at(step)
    state = load_run_checkpoint(path)
    spec = checkpoint_spec(state, cfg, path, data)
    G = build_generator(cfg.g, spec)
    which = "G_ema" if ema and state["G_ema"] is not None else "G"
    try:
        G.load_state_dict(state[which])
    except RuntimeError as err:
        raise CheckpointError(f"checkpoint {path} does not match the run's config.yaml: {err}") from None
    bad = [name for name, t in state[which].items() if t.is_floating_point() and not torch.isfinite(t).all()]
    if bad:
        raise CheckpointError(f"the generator ({which}) in checkpoint {path} has non-finite weights "
                              f"({', '.join(bad[:3])}): the run had diverged. Use an earlier checkpoint (--step).")
    return G.to(device).eval(), cfg, step, spec
