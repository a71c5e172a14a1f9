"""The best trial of a study as a preset for new runs (``ganscape study best``)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import yaml

from ganscape.config import run_settings, to_dict
from ganscape.errors import ConfigError, ConfigWarning
from ganscape.runs import RunDir
from ganscape.study.engine import StudyDir, group_folder, group_label
from ganscape.study.report import best_of, gather, groups_of


@dataclass(frozen=True)
class BestPreset:
    group: str  # the best trial's group label
    trial: int  # its number in the group's Optuna study
    score: str  # "METRIC VALUE", the objective of the best trial
    groups: int  # how many groups were compared
    path: Path  # the preset written


def _chosen_groups(groups: dict[str, list[dict]], spec, group: str | None) -> dict[str, list[dict]]:
    """The groups to pick from: all, or the one named by its label or its runs' folder name."""
    if group is None:
        return groups
    named = {name: group_label(g) for g in spec.group_names() for name in (group_label(g), group_folder(g))}
    if group not in named:
        raise ConfigError(f"study {spec.name} has no group {group!r}; its groups: {'; '.join(groups)}.")
    return {named[group]: groups[named[group]]}


def write_best_preset(folder: StudyDir, out: Path, group: str | None = None) -> BestPreset:
    """Write the config of the best completed trial (of ``group``, or over all groups) to ``out``: its run's
    resolved config without run.* (a new run's place), so ``ganscape train OUT`` starts a run like it."""
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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)  # the study's configs were checked when it was made
        cfg = run.read_config()
    score = f"{spec.objective.metric} {best['value']:.6g}"
    header = (f"# The best trial of study {spec.name}: {best['group']}, trial {best['trial']} ({score}, mean over "
              f"{spec.seeds} seed(s)).\n# The config of its run {run.path.name}, without run.* (a new run's place).\n")
    out.write_text(header + yaml.safe_dump(run_settings(to_dict(cfg)), sort_keys=False))
    return BestPreset(best["group"], best["trial"], score, len(groups), out)
