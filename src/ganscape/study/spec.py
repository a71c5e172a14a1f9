"""A study: a base config, groups to compare, a search space, seeds, a sampler and an objective.

A study spec is YAML, checked like a config (unknown keys and values are refused with the valid ones)::

    base: ring8_grid                 # a preset (name or file) that every trial starts from
    overrides: [train.steps=1000]    # fixed for every trial
    groups:                          # compared with each other: every combination is a group
      loss: [ns, wgan, hinge]
      penalty: [none, "wgan_gp:1"]
      d.norm: [none, spectral]
    space: wide                      # a built-in space, a mapping of parameters, or a list of both
    trials: 6                        # trials per group (grid: default the whole grid); each runs every seed
    seeds: 2
    sampler: {name: sobol, seed: 0}  # random, sobol (quasi-random), tpe, gp (Bayesian), grid
    objective: {metric: kl_to_uniform, direction: minimize, reduce: best}
    pruning: {enabled: false}

A parameter is ``NAME: {KIND: ARGS, keys: [config keys]}`` with KIND one of ``log_uniform: [low,
high]``, ``uniform: [low, high]``, ``int: [low, high]``, ``categorical: [values]`` or ``settings:
{label: {key: value, ...}, ...}`` (named sets of values, e.g. SN-GAN's A-F). ``keys`` default to
``[NAME]``; one parameter may set several keys (the Landscape gives G and D the same learning rate).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ganscape.config import Experiment, all_keys, find_preset, load_config, read_yaml
from ganscape.errors import ConfigError, close_matches
from ganscape.metrics import BETTER

KINDS = ("log_uniform", "uniform", "int", "categorical", "settings")
SAMPLERS = {
    "random": "independent uniform draws",
    "sobol": "scrambled Sobol quasi-random sequence (the GAN Landscape's arXiv protocol)",
    "tpe": "tree-structured Parzen estimator (Bayesian)",
    "gp": "Gaussian-process Bayesian optimization (the Landscape's ICML protocol)",
    "grid": "every combination of categorical parameters",
}
REDUCTIONS = {"best": "the best value over the run's evaluations", "last": "the last evaluation"}

# Shared learning rate and betas for G and D, as in the GAN Landscape (paper digest A.5).
BOTH_LR, BOTH_B1, BOTH_B2 = ["g_opt.lr", "d_opt.lr"], ["g_opt.beta1", "d_opt.beta1"], ["g_opt.beta2", "d_opt.beta2"]
SNGAN_SETS = {  # SN-GAN's A-F as (lr, beta1, beta2, n_disc)
    "A": (1e-4, 0.5, 0.9, 5), "B": (1e-4, 0.5, 0.999, 1), "C": (2e-4, 0.5, 0.999, 1),
    "D": (1e-3, 0.5, 0.9, 5), "E": (1e-3, 0.5, 0.999, 5), "F": (1e-3, 0.9, 0.999, 5),
}
BUILTIN_SPACES: dict[str, dict] = {
    "wide": {
        "lr": {"log_uniform": [1e-5, 1e-2], "keys": BOTH_LR},
        "beta1": {"uniform": [0.0, 0.99], "keys": BOTH_B1},
        "beta2": {"uniform": [0.0, 0.999], "keys": BOTH_B2},
        "train.n_disc": {"categorical": [1, 5]},
    },
    "narrow": {
        "lr": {"log_uniform": [1e-4, 1e-3], "keys": BOTH_LR},
        "beta1": {"categorical": [0.5], "keys": BOTH_B1},
        "train.n_disc": {"categorical": [1]},
    },
    "literature": {
        "setting": {"settings": {label: {"g_opt.lr": lr, "d_opt.lr": lr, "g_opt.beta1": b1, "d_opt.beta1": b1,
                                         "g_opt.beta2": b2, "d_opt.beta2": b2, "train.n_disc": n}
                                 for label, (lr, b1, b2, n) in SNGAN_SETS.items()}},
    },
}
# The spec's own fixed keys: set by the study, never searched.
RESERVED = ("train.seed", "run.root", "run.name")


@dataclass(frozen=True)
class Param:
    """One searched parameter: its kind, its arguments and the config keys it sets."""

    name: str
    kind: str
    args: Any
    keys: tuple[str, ...]

    def settings(self, value: Any) -> dict[str, Any]:
        """The value of every key this parameter sets (each key of the chosen set, for settings)."""
        if self.kind == "settings":
            return dict(self.args[value])
        return {key: value for key in self.keys}


@dataclass(frozen=True)
class Objective:
    metric: str  # a key of metrics.jsonl, e.g. eval/fid
    direction: str  # minimize or maximize
    reduce: str  # best or last

    def better(self, a: float, b: float) -> bool:
        return a < b if self.direction == "minimize" else a > b


@dataclass(frozen=True)
class StudySpec:
    name: str
    base: str
    overrides: tuple[str, ...]
    groups: dict[str, tuple]
    params: tuple[Param, ...]
    trials: int
    seeds: int
    sampler: str
    sampler_seed: int
    objective: Objective
    pruning: bool = False
    description: str = ""
    source: dict = field(default_factory=dict)  # the spec as written, to store beside the study

    def group_names(self) -> list[dict[str, Any]]:
        """Every combination of the group values, in order."""
        keys = list(self.groups)
        return [dict(zip(keys, values)) for values in itertools.product(*self.groups.values())] or [{}]

    def trial_settings(self, group: dict, params: dict, seed: int) -> dict[str, Any]:
        """The typed values a trial sets by dotted key, in the order they apply: the group's, each parameter's
        (in the spec's order: a later one wins), the seed."""
        settings = dict(group)
        for param in self.params:
            settings.update(param.settings(params[param.name]))
        return settings | {"train.seed": seed}

    def trial_config(self, group: dict, params: dict, seed: int,
                     placement: Mapping[str, Any] | None = None) -> Experiment:
        """A trial's config: the base preset, the fixed overrides, then the trial's values and ``placement``
        (where and how it runs: run.root, train.device, ...) as typed values, never written out as text."""
        return load_config(self.base, list(self.overrides),
                           settings=self.trial_settings(group, params, seed) | dict(placement or {}))


# ---------------------------------------------------------------- reading a spec


def _error(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _known(key: str, where: str) -> None:
    valid = all_keys()
    if key in RESERVED:
        raise _error(where, f"{key} is set by the study itself (seeds, run directories).")
    if key not in valid and key != "penalty":
        hint = close_matches(key, valid)
        raise _error(where, f"unknown config key {key!r}." + (f" Did you mean {hint[0]!r}?" if hint else ""))


def _param(name: str, entry: Any, where: str) -> Param:
    if not isinstance(entry, Mapping):
        raise _error(where, f"parameter {name!r} must be a mapping like {{log_uniform: [1e-5, 1e-2]}}, not {entry!r}.")
    kinds = [k for k in entry if k in KINDS]
    unknown = [k for k in entry if k not in KINDS and k != "keys"]
    if unknown or len(kinds) != 1:
        raise _error(where, f"parameter {name!r} needs exactly one of {', '.join(KINDS)} (and optionally keys); "
                            f"got {', '.join(map(str, entry))}.")
    kind, args = kinds[0], entry[kinds[0]]
    keys = entry.get("keys", [name])
    if isinstance(keys, str):
        keys = [keys]
    if kind == "settings":
        if not isinstance(args, Mapping) or not args or not all(isinstance(v, Mapping) for v in args.values()):
            raise _error(where, f"parameter {name!r}: settings maps labels to sets of key: value.")
        for values in args.values():
            for key in values:
                _known(key, f"{where}, parameter {name!r}")
        return Param(name, kind, {str(k): dict(v) for k, v in args.items()}, ())
    for key in keys:
        _known(key, f"{where}, parameter {name!r}")
    if kind == "categorical":
        if not isinstance(args, list) or not args:
            raise _error(where, f"parameter {name!r}: categorical takes a non-empty list of values.")
        return Param(name, kind, tuple(args), tuple(keys))
    if not (isinstance(args, list) and len(args) == 2 and all(isinstance(a, (int, float)) and not isinstance(a, bool)
                                                              for a in args)):
        raise _error(where, f"parameter {name!r}: {kind} takes [low, high], not {args!r}.")
    low, high = args
    if not low < high or (kind == "log_uniform" and low <= 0) or (kind == "int" and not all(
            float(a).is_integer() for a in args)):
        raise _error(where, f"parameter {name!r}: [{low}, {high}] is not a valid {kind} range"
                            + (" (log_uniform needs 0 < low)" if kind == "log_uniform" else "") + ".")
    return Param(name, kind, (int(low), int(high)) if kind == "int" else (float(low), float(high)), tuple(keys))


def _space(space: Any, where: str) -> list[Param]:
    """Parameters from a built-in name, a mapping, or a list of both (later ones replace earlier ones)."""
    parts = space if isinstance(space, list) else [space]
    merged: dict[str, Any] = {}
    for part in parts:
        if isinstance(part, str):
            if part not in BUILTIN_SPACES:
                raise _error(where, f"unknown built-in space {part!r}; built in: {', '.join(BUILTIN_SPACES)}.")
            merged |= BUILTIN_SPACES[part]
        elif isinstance(part, Mapping):
            merged |= dict(part)
        elif part is not None:
            raise _error(where, f"space must be a built-in name, a mapping of parameters or a list of them, "
                                f"not {part!r}.")
    return [_param(str(name), entry, where) for name, entry in merged.items()]


def _objective(entry: Any, where: str) -> Objective:
    if isinstance(entry, str):
        entry = {"metric": entry}
    if not isinstance(entry, Mapping) or "metric" not in entry:
        raise _error(where, "objective needs a metric, e.g. {metric: fid, direction: minimize, reduce: best}.")
    unknown = set(entry) - {"metric", "direction", "reduce"}
    if unknown:
        raise _error(where, f"objective takes metric, direction and reduce, not {', '.join(sorted(unknown))}.")
    metric = str(entry["metric"])
    name = metric.split("/", 1)[1] if "/" in metric else metric
    metric = metric if "/" in metric else f"eval/{metric}"
    direction = entry.get("direction") or {"min": "minimize", "max": "maximize"}.get(BETTER.get(name, ""))
    if direction not in ("minimize", "maximize"):
        raise _error(where, f"objective {metric}: give direction: minimize or maximize"
                            + ("" if name in BETTER else f" ({name} has no known direction)") + ".")
    reduce = entry.get("reduce", "best")
    if reduce not in REDUCTIONS:
        raise _error(where, f"objective reduce: {reduce!r} is none of {', '.join(REDUCTIONS)}.")
    return Objective(metric, direction, reduce)


SPEC_KEYS = ("name", "description", "base", "overrides", "groups", "space", "trials", "seeds", "sampler",
             "objective", "pruning")


def parse_spec(data: Any, where: str, name: str = "study") -> StudySpec:
    """A StudySpec from plain data (a YAML file's), with a clear error for every malformed part."""
    if not isinstance(data, Mapping):
        raise _error(where, "a study spec is a mapping of " + ", ".join(SPEC_KEYS) + ".")
    unknown = [k for k in data if k not in SPEC_KEYS]
    if unknown:
        hint = close_matches(str(unknown[0]), SPEC_KEYS)
        raise _error(where, f"unknown study key {unknown[0]!r}." + (f" Did you mean {hint[0]!r}?" if hint else "")
                            + f" Valid: {', '.join(SPEC_KEYS)}.")
    if "base" not in data:
        raise _error(where, "a study needs base: a preset that every trial starts from (e.g. base: ring8_grid).")
    try:
        find_preset(data["base"])
    except ConfigError as err:
        raise _error(where, f"base: {err}") from None
    overrides = data.get("overrides") or []
    if isinstance(overrides, str):
        overrides = [overrides]
    for item in overrides:
        if not isinstance(item, str) or "=" not in item:
            raise _error(where, f"overrides are key=value strings, not {item!r}.")
        _known(item.partition("=")[0].strip(), where)
    groups = data.get("groups") or {}
    if not isinstance(groups, Mapping) or not all(isinstance(v, list) and v for v in groups.values()):
        raise _error(where, "groups maps config keys to non-empty lists of values, e.g. loss: [ns, wgan].")
    for key in groups:
        _known(str(key), f"{where}, groups")
    params = _space(data.get("space"), where)
    clash = {k for p in params for k in p.keys} & set(groups)
    if clash:
        raise _error(where, f"{', '.join(sorted(clash))} is both a group and a searched parameter.")
    sampler = data.get("sampler", "random")
    sampler = {"name": sampler} if isinstance(sampler, str) else sampler
    if not isinstance(sampler, Mapping) or sampler.get("name") not in SAMPLERS or set(sampler) - {"name", "seed"}:
        raise _error(where, f"sampler: give {{name: NAME, seed: N}} with NAME one of {', '.join(SAMPLERS)}.")
    if sampler["name"] == "grid" and any(p.kind not in ("categorical", "settings") for p in params):
        raise _error(where, "the grid sampler needs categorical (or settings) parameters only.")
    counts = {}
    grid_size = math.prod(len(p.args) for p in params)
    for key in ("trials", "seeds"):
        value = data.get(key, grid_size if key == "trials" and sampler["name"] == "grid" else 1)
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 100_000:
            raise _error(where, f"{key} must be a whole number from 1, got {value!r}.")
        counts[key] = value
    pruning = data.get("pruning", False)
    pruning = pruning.get("enabled", False) if isinstance(pruning, Mapping) else pruning
    if not isinstance(pruning, bool):
        raise _error(where, "pruning is true or false (a median pruner on the objective at each evaluation).")
    return StudySpec(str(data.get("name", name)), str(data["base"]), tuple(overrides),
                     {str(k): tuple(v) for k, v in groups.items()}, tuple(params), counts["trials"], counts["seeds"],
                     str(sampler["name"]), int(sampler.get("seed", 0)), _objective(data.get("objective"), where),
                     pruning, str(data.get("description", "")), dict(data))


STUDIES = Path(__file__).resolve().parents[1] / "studies"  # the built-in study specs, installed with ganscape


def find_spec(name: str | Path) -> Path:
    path = Path(name)
    if path.is_file():
        return path
    candidate = STUDIES / (path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml")
    if candidate.is_file():
        return candidate
    names = sorted(p.stem for p in STUDIES.glob("*.yaml"))
    hint = close_matches(path.stem, names)
    raise ConfigError(f"study spec {str(name)!r} not found (looked at {path} and {candidate})."
                      + (f" Did you mean {hint[0]!r}?" if hint else "") + f" Built-in studies: {', '.join(names)}.")


def load_spec(name: str | Path) -> StudySpec:
    path = find_spec(name)
    return parse_spec(read_yaml(path), str(path), path.stem)
