"""Branching a run: a new run that continues from a checkpoint of another, with some settings changed.

The branch starts as the parent's checkpoint at the chosen step: its networks, EMA, optimizer moments,
random streams and step counter, stored as the branch's first checkpoint with the branch's config and
its optimizer settings (lr, betas, ...). Its ``metrics.jsonl``, sample pictures and evaluation results
start with the parent's up to that step, so its curves and best scores cover its whole history (its
TensorBoard events start at the branch). ``run.parent`` and ``run.parent_step`` record where it came
from; as ``run.*`` keys they are no part of what a checkpoint's config is checked on. The parent is
only read.

Only settings that the inherited state fits may change (``BRANCHABLE_KEYS``): not the networks or the
data (the weights have their shapes), the optimizer's kind (its moments), the seed or the shards (the
random streams).
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple

from ganscape.config import RESUMABLE_KEYS, Experiment, RunConfig, config_differences, resolve, to_dict
from ganscape.errors import CheckpointError, ConfigError
from ganscape.runs.rundir import RunDir
from ganscape.store.checkpoint import save_checkpoint
from ganscape.store.rundir import read_log, step_in_name, write_log
from ganscape.training.optim import hyperparameters
from ganscape.training.snapshots import load_run_checkpoint
from ganscape.training.work import in_g_updates

_OPTIMIZER_SETTINGS = ("lr", "beta1", "beta2", "eps", "alpha")
BRANCHABLE_KEYS = (*RESUMABLE_KEYS, "loss", "penalty.",
                   *(f"{opt}.{key}" for opt in ("g_opt", "d_opt") for key in _OPTIMIZER_SETTINGS),
                   "train.n_disc", "train.batch_size", "train.accumulate", "train.ema", "train.fused_d",
                   "train.precision", "train.compile", "train.channels_last")


class Branch(NamedTuple):
    run: RunDir  # the new run, holding its lock
    cfg: Experiment
    step: int  # the parent's checkpoint it starts at
    changes: list[tuple[str, Any, Any]]  # (key, the parent's value, the branch's)


def branch_run(parent_dir: str | Path, out: str | Path, overrides: list[str], step: int | None = None) -> Branch:
    """Create the run ``out`` from the checkpoint of the run in ``parent_dir`` at ``step`` (default: its newest),
    under the parent's config with ``overrides``. ``ganscape.runs.branch`` creates and trains it."""
    placed = [item for item in overrides if item.partition("=")[0].strip().startswith("run.")]
    if placed:
        raise ConfigError(f"{placed[0]!r}: a branch's run directory is given with --out, and its parent is recorded "
                          "in run.parent; leave run.* out.")
    parent = RunDir.open(parent_dir)
    base = parent.read_config()
    cfg = resolve(to_dict(base), overrides)
    changes = config_differences(base, cfg)
    check_branchable(changes)
    step, path = parent.checkpoint_at(step)
    if in_g_updates(cfg).train.steps <= step:
        per_step = cfg.train.n_disc if cfg.train.unit == "d" else 1  # train.steps counts D updates with unit d
        raise ConfigError(f"the branch starts at step {step} and train.steps is {cfg.train.steps} (train.unit="
                          f"{cfg.train.unit}): give train.steps=N with N > {step * per_step} for it to train.")
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise CheckpointError(f"{target} already exists; give --out a new folder (a branch never writes into "
                              "another run).")
    state = load_run_checkpoint(path)
    cfg = replace(cfg, run=RunConfig(str(target.parent), target.name, parent=str(parent.path.resolve()),
                                     parent_step=step))
    run = RunDir.create(cfg)
    try:
        save_checkpoint(run.checkpoint_file(step), inherited_state(state, cfg))
        copy_history(parent, run, step)
    except BaseException:
        run.discard_if_unused()
        run.release()
        raise
    return Branch(run, cfg, step, changes)


def check_branchable(changes: list[tuple[str, Any, Any]]) -> None:
    """Refuse changes of settings that the parent's checkpoint was made for, listing those that may change."""
    fixed = [key for key, _, _ in changes if not key.startswith(BRANCHABLE_KEYS)]
    if fixed:
        may = ", ".join(key + "*" if key.endswith(".") else key for key in BRANCHABLE_KEYS)
        raise ConfigError(f"cannot change {', '.join(fixed)} in a branch: the parent's checkpoint (networks, "
                          f"optimizer moments, random streams) was made for its settings; start a new run with "
                          f"'ganscape train' to change them. Keys that may change in a branch: {may}.")


def inherited_state(state: dict, cfg: Experiment) -> dict:
    """The parent's checkpointed state as the branch's first checkpoint: with the branch's config and optimizer
    settings (the moments are kept), and an EMA as the branch keeps one (begun at the generator's weights
    where the parent kept none)."""
    state = dict(state, config=to_dict(cfg))
    for key, opt_cfg in (("opt_g", cfg.g_opt), ("opt_d", cfg.d_opt)):
        settings = hyperparameters(opt_cfg)
        state[key] = dict(state[key], param_groups=[group | settings for group in state[key]["param_groups"]])
    if cfg.train.ema == 0:
        state["G_ema"] = None
    elif state["G_ema"] is None:
        state["G_ema"] = dict(state["G"])
    return state


def copy_history(parent: RunDir, run: RunDir, step: int) -> None:
    """The parent's log records, sample pictures and evaluation results up to ``step``, into the branch."""
    write_log(run.metrics_path, [record for record in read_log(parent.metrics_path) if record["step"] <= step])
    for source, target in ((parent.samples, run.samples), (parent.eval, run.eval)):
        for path in sorted(source.glob("*")) if source.is_dir() else []:
            at = step_in_name(path.name)
            if path.is_file() and at is not None and at <= step:
                shutil.copy2(path, target / path.name)
