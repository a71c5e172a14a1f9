"""The best trial of a study as a preset for new runs (``ganscape study best``), and its best checkpoint as an
exported model (``ganscape study export``)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import yaml

from ganscape.config import run_settings, to_dict
from ganscape.errors import ConfigError, ConfigWarning
from ganscape.runs import RunDir
from ganscape.study.engine import StudyDir, best_checkpoint_step, group_folder, group_label
from ganscape.study.report import best_of, gather, groups_of
from ganscape.study.spec import StudySpec


@dataclass(frozen=True)
class BestTrial:
    group: str  # the best trial's group label
    trial: int  # its number in the group's Optuna study
    score: str  # "METRIC VALUE", the objective of the best trial
    groups: int  # how many groups were compared
    run: RunDir  # its first seed's run directory


@dataclass(frozen=True)
class BestPreset(BestTrial):
    path: Path  # the preset written


def _chosen_groups(groups: dict[str, list[dict]], spec, group: str | None) -> dict[str, list[dict]]:
    """The groups to pick from: all, or the one named by its label or its runs' folder name."""
    if group is None:
        return groups
    named = {name: group_label(g) for g in spec.group_names() for name in (group_label(g), group_folder(g))}
    if group not in named:
        raise ConfigError(f"study {spec.name} has no group {group!r}; its groups: {'; '.join(groups)}.")
    return {named[group]: groups[named[group]]}


def best_trial(folder: StudyDir, group: str | None = None) -> tuple[BestTrial, StudySpec]:
    """(the best completed trial of ``group``, or over all groups, with its first seed's run; the spec)."""
    spec, rows, _ = gather(folder)
    groups = _chosen_groups(groups_of(rows, spec), spec, group)
    best = best_of([t for trials in groups.values() for t in trials], spec)
    if best is None:
        which = f"group {next(iter(groups))}" if group is not None else "any group"
        raise ConfigError(f"no trial of {which} has finished with a finite {spec.objective.metric} yet; see "
                          f"'ganscape study status {folder.path}'.")
    run = RunDir(folder.runs / best["run_dirs"][0])
    if not run.config_path.is_file():
        raise ConfigError(f"the best trial's run directory {run} is not on this machine; run this where the study "
                          "folder holds the runs (a file system every worker mounts).")
    score = f"{spec.objective.metric} {best['value']:.6g}"
    return BestTrial(best["group"], best["trial"], score, len(groups), run), spec


def write_best_preset(folder: StudyDir, out: Path, group: str | None = None) -> BestPreset:
    """Write the config of the best completed trial (of ``group``, or over all groups) to ``out``: its run's
    resolved config without run.* (a new run's place), so ``ganscape train OUT`` starts a run like it."""
    best, spec = best_trial(folder, group)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)  # the study's configs were checked when it was made
        cfg = best.run.read_config()
    header = (f"# The best trial of study {spec.name}: {best.group}, trial {best.trial} ({best.score}, mean over "
              f"{spec.seeds} seed(s)).\n# The config of its run {best.run.path.name}, without run.* (a new run's "
              "place).\n")
    out.write_text(header + yaml.safe_dump(run_settings(to_dict(cfg)), sort_keys=False))
    return BestPreset(**vars(best), path=out)


@dataclass(frozen=True)
class BestCheckpoint:
    trial: BestTrial
    step: int  # the checkpoint's step
    of_best_evaluation: bool  # True: the run's best evaluation; False: its newest (the best one was not kept)


def best_checkpoint(folder: StudyDir, group: str | None = None) -> BestCheckpoint:
    """The checkpoint of the best trial's (first seed's) best evaluation: the one its run kept for it, or the
    run's newest where none was kept (``reduce: last``, or an objective ``checkpoint.keep_best`` cannot rank)."""
    best, spec = best_trial(folder, group)
    step = best_checkpoint_step(best.run, spec)
    return BestCheckpoint(best, best.run.checkpoint_at(step)[0], step is not None)


def export_best(folder: StudyDir, out: Path, group: str | None = None) -> BestCheckpoint:
    """Export the generator of ``best_checkpoint`` (its EMA weights where the run kept them) as a model folder,
    as ``ganscape export RUN_DIR --step N`` does."""
    from ganscape.hub import export_run

    chosen = best_checkpoint(folder, group)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)  # the study's configs were checked when it was made
        export_run(chosen.trial.run, out, chosen.step)
    return chosen
