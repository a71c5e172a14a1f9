"""Writing a run's checkpoints and choosing the one a resumed run continues from."""

from __future__ import annotations

import os
from pathlib import Path

from ganscape.config import Experiment, to_dict
from ganscape.errors import CheckpointError
from ganscape.store.checkpoint import load_checkpoint, prune_checkpoints, remove_stale_temporaries, save_checkpoint
from ganscape.store.rundir import RunDir
from ganscape.training.best import BestScores
from ganscape.training.distributed import SINGLE, Processes, gather
from ganscape.training.divergence import check_state
from ganscape.training.state import GANState


def save_state(state: GANState, cfg: Experiment, run: RunDir, best: BestScores, checked_since: int,
               processes: Processes = SINGLE, keep: frozenset[int] = frozenset()) -> Path:
    """Checkpoint the state with its config, then prune old checkpoints (never the best one, with keep_best,
    nor those at the steps in ``keep``: the last before a collapse, ``training.collapse``).

    A state with a non-finite tensor is never written: the run stops with a diagnosis instead. Under
    torchrun every process calls this: their shards' random streams are gathered, and process 0 writes.
    """
    check_state(state, run.checkpoints, checked_since)
    streams = {shard: value for part in gather(state.stream_states(), processes) for shard, value in part.items()}
    path = run.checkpoint_file(state.step)
    if not processes.main:
        return path
    remove_stale_temporaries(run.checkpoints)
    path = save_checkpoint(path, state.state_dict(streams) | {"config": to_dict(cfg)})
    best_step = best.step_of(f"eval/{cfg.checkpoint.keep_best}") if cfg.checkpoint.keep_best else None
    prune_checkpoints(run.checkpoints, cfg.checkpoint.keep, keep | ({best_step} if best_step is not None else set()))
    return path


def load_run_checkpoint(path: Path) -> dict:
    """A checkpoint's state after checking that it is a complete run state."""
    state = load_checkpoint(path)
    problems = GANState.problems(state)
    if problems:
        raise CheckpointError(f"checkpoint {path} is not a complete run checkpoint: {'; '.join(problems)}.")
    return state


def resume_state(state: GANState, run: RunDir, from_step: int | None = None, move_newer: bool = True) -> int:
    """Load the checkpoint to continue from into ``state``: the newest, or the one at ``from_step``.

    With ``from_step``, the newer checkpoints are moved aside into ``checkpoints/superseded-<time>/``
    (nothing is deleted; only where ``move_newer``: process 0 under torchrun). A corrupt newest
    checkpoint is refused with the newest intact one named.
    """
    found = run.list_checkpoints()
    if not found:
        raise CheckpointError(f"run directory {run.path} has no checkpoint in {run.checkpoints}.")
    if from_step is None:
        step, path = found[-1]
    else:
        steps = {s: p for s, p in found}
        if from_step not in steps:
            raise CheckpointError(f"{run} has no checkpoint at step {from_step} (checkpoints: "
                                  f"{', '.join(str(s) for s in steps)}).")
        step, path = from_step, steps[from_step]
    try:
        loaded = load_run_checkpoint(path)
    except CheckpointError as err:
        intact = next((s for s, p in reversed(found) if s < step and _intact(p)), None)
        hint = (f" The newest intact checkpoint is step {intact}: continue from it with "
                f"'ganscape resume {run} --from-step {intact}'." if intact is not None
                else " No older checkpoint is intact.")
        raise CheckpointError(f"{err}{hint}") from None
    try:
        state.load_state_dict(loaded)
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as err:
        raise CheckpointError(f"checkpoint {path} does not match the run's config.yaml: {err}") from None
    newer = [p for s, p in found if s > step]
    if newer and move_newer:
        aside = run.superseded_folder()
        aside.mkdir()
        for p in newer:
            os.replace(p, aside / p.name)
    return step


def _intact(path: Path) -> bool:
    try:
        load_run_checkpoint(path)
    except CheckpointError:
        return False
    return True
