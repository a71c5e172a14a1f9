"""A study: a base config, groups to compare, a search space, seeds, a sampler and an objective.

A study spec is YAML, checked like a config (unknown keys and values are refused with the valid ones)::

    base: ring8_grid                 # a preset (name or file) that every trial starts from
    overrides: [train.steps=1000]    # fixed for every trial
    groups:                          # compared with each other: every combination is a group
      loss: [ns, wgan, hinge]
      penalty: [none, "wgan_gp:1"]
      d.norm: [none, spectral]
    space: wide                      # a built-in space, a mapping of parameters, or a list of both
    group_spaces:                    # extra parameters for the groups that match (optional)
      - groups: {d.norm: [spectral]}
        space: {d.width: {categorical: [64, 128]}}
    trials: 6                        # trials per group (grid: default the largest group's grid); each runs every seed
    seeds: 2
    sampler: {name: sobol, seed: 0}  # random, sobol (quasi-random), tpe, gp (Bayesian), grid
    objective: {metric: kl_to_uniform, direction: minimize, reduce: best}
    pruning: {enabled: false}
    report_values: [fid, is_mean]    # also reported per group, best and last (optional)
    truncation_sweep: [2, 1, 0.5]    # each finished run's truncation sweep and amenability (optional)

A group key is a config key with its list of values, or a name with labelled sets of settings, when one
group must set several keys (Xiang & Li give G and D the same normalization)::

    groups:
      norm: {weight: {g.norm: weight, d.norm: weight}, batch: {g.norm: batch, d.norm: batch}}

A parameter is ``NAME: {KIND: ARGS, keys: [config keys]}`` with KIND one of ``log_uniform: [low,
high]``, ``uniform: [low, high]``, ``int: [low, high]``, ``categorical: [values]`` or ``settings:
{label: {key: value, ...}, ...}`` (named sets of values, e.g. SN-GAN's A-F). ``keys`` default to
``[NAME]``; one parameter may set several keys (the Landscape gives G and D the same learning rate).

A group's parameters are ``StudySpec.params_for(group)``: the spec's, then those of every entry of
``group_spaces`` whose ``groups`` lists the group's value of each named key. A parameter that sets
penalty weights (``penalty.<name>.weight``) is searched only in the groups whose config uses one of
those penalties, and sets only theirs: the built-in spaces' ``lambda`` is searched for the groups with
wgan_gp or dragan, ``lambda_l2`` for those with l2, neither for the others. docs/studies.md compares
the built-in spaces with the GAN Landscape's.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ganscape.config import Experiment, all_keys, find_preset, load_config, read_yaml
from ganscape.config.values import penalty_weight_keys, weighted_penalty
from ganscape.errors import ConfigError, ConfigWarning, close_matches
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
FAILED = {"worst": "diverged and pruned trials score the worst value (the paper's protocol)",
          "exclude": "diverged and pruned trials are left out of the scores"}

# Shared learning rate and betas for G and D, as in the GAN Landscape (paper digest A.5).
BOTH_LR, BOTH_B1, BOTH_B2 = ["g_opt.lr", "d_opt.lr"], ["g_opt.beta1", "d_opt.beta1"], ["g_opt.beta2", "d_opt.beta2"]
SNGAN_SETS = {  # SN-GAN's A-F as (lr, beta1, beta2, n_disc)
    "A": (1e-4, 0.5, 0.9, 5), "B": (1e-4, 0.5, 0.999, 1), "C": (2e-4, 0.5, 0.999, 1),
    "D": (1e-3, 0.5, 0.9, 5), "E": (1e-3, 0.5, 0.999, 5), "F": (1e-3, 0.9, 0.999, 5),
}
# The penalty weights of compare_gan's GANPENALTYHyperParams (in both ranges): one lambda for the gradient
# penalties, another range for weight decay. Each applies only to the groups that use its penalty.
PENALTY_LAMBDAS = {
    "lambda": {"log_uniform": [0.1, 100.0], "keys": ["penalty.wgan_gp.weight", "penalty.dragan.weight"]},
    "lambda_l2": {"log_uniform": [1e-4, 10.0], "keys": ["penalty.l2.weight"]},
}
BUILTIN_SPACES: dict[str, dict] = {  # docs/studies.md compares them with the paper's and compare_gan's
    "wide": {
        "lr": {"log_uniform": [1e-5, 1e-2], "keys": BOTH_LR},
        "beta1": {"uniform": [0.0, 0.99], "keys": BOTH_B1},
        "beta2": {"uniform": [0.0, 0.999], "keys": BOTH_B2},
        "train.n_disc": {"categorical": [1, 5]},
        **PENALTY_LAMBDAS,
    },
    "narrow": {
        "lr": {"log_uniform": [1e-4, 1e-3], "keys": BOTH_LR},
        "beta1": {"categorical": [0.5], "keys": BOTH_B1},
        "beta2": {"uniform": [0.0, 0.999], "keys": BOTH_B2},
        "train.n_disc": {"categorical": [1]},
        **PENALTY_LAMBDAS,
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

    def penalties(self) -> set[str]:
        """The penalties whose weights this parameter sets (none for an ordinary parameter)."""
        return {weighted_penalty(key) for key in self.keys} - {None}

    def for_penalties(self, used: set[str]) -> "Param | None":
        """This parameter in a group whose config uses the penalties ``used``: as it is when it sets no penalty
        weight, else setting only the weights of penalties in use (None: the group uses none of them)."""
        if not self.penalties():
            return self
        keys = tuple(key for key in self.keys if weighted_penalty(key) in used)
        return Param(self.name, self.kind, self.args, keys) if keys else None


@dataclass(frozen=True)
class GroupSpace:
    """Extra parameters for the groups whose value of each key in ``match`` is among the listed ones."""

    match: dict[str, tuple]
    params: tuple[Param, ...]

    def matches(self, group: Mapping[str, Any]) -> bool:
        return all(group.get(key) in values for key, values in self.match.items())


@dataclass(frozen=True)
class Objective:
    metric: str  # a key of metrics.jsonl, e.g. eval/fid
    direction: str  # minimize or maximize
    reduce: str  # best or last
    failed: str = "worst"  # diverged and pruned trials: scored as the worst value, or excluded (see FAILED)
    worst: float | None = None  # that worst value; None: the metric's bound, else the worst one observed

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
    group_spaces: tuple[GroupSpace, ...] = ()
    group_sets: dict[str, dict[str, dict]] = field(default_factory=dict)  # named group -> label -> its settings
    report_values: tuple[str, ...] = ()  # logged values (eval/fid) the report gives per group, best and last
    truncation_sweep: tuple[float, ...] = ()  # thresholds each finished run is swept at (metrics.amenability)
    _penalties_of: dict = field(default_factory=dict, compare=False, repr=False)  # cache of penalties_used

    def group_names(self) -> list[dict[str, Any]]:
        """Every combination of the group values, in order."""
        keys = list(self.groups)
        return [dict(zip(keys, values)) for values in itertools.product(*self.groups.values())] or [{}]

    def params_for(self, group: dict) -> tuple[Param, ...]:
        """The parameters searched in ``group``: the spec's, then those of each matching group space (one of the
        same name replaces the earlier); a penalty-weight parameter only where the group uses that penalty."""
        named: dict[str, Param] = {}
        for param in [*self.params, *(p for space in self.group_spaces if space.matches(group) for p in space.params)]:
            named.pop(param.name, None)
            named[param.name] = param
        if not any(param.penalties() for param in named.values()):
            return tuple(named.values())
        used = self.penalties_used(group)
        return tuple(kept for param in named.values() if (kept := param.for_penalties(used)) is not None)

    def group_settings(self, group: dict) -> dict[str, Any]:
        """The config values a group sets: each config key's value, and each named group's chosen set."""
        settings: dict[str, Any] = {}
        for key, value in group.items():
            settings.update(self.group_sets[key][value] if key in self.group_sets else {key: value})
        return settings

    def penalties_used(self, group: dict) -> set[str]:
        """The penalties in ``penalty.use`` of the group's config (base, overrides and the group's values)."""
        key = repr((self.base, self.overrides, sorted(group.items())))  # still right for a dataclasses.replace copy
        if key not in self._penalties_of:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConfigWarning)
                cfg = load_config(self.base, list(self.overrides), settings=self.group_settings(group))
            self._penalties_of[key] = {term.name for term in cfg.penalty.use}
        return self._penalties_of[key]

    def trial_settings(self, group: dict, params: dict, seed: int) -> dict[str, Any]:
        """The typed values a trial sets by dotted key, in the order they apply: the group's, each of the group's
        parameters (in the spec's order: a later one wins), the seed."""
        settings = self.group_settings(group)
        for param in self.params_for(group):
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
    valid = all_keys() + penalty_weight_keys()
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
    if 0 < sum(weighted_penalty(key) is not None for key in keys) < len(keys):
        raise _error(where, f"parameter {name!r} sets penalty weights and other keys ({', '.join(keys)}); give the "
                            "penalty weights (penalty.NAME.weight) a parameter of their own.")
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
    unknown = set(entry) - {"metric", "direction", "reduce", "failed", "worst"}
    if unknown:
        raise _error(where, f"objective takes metric, direction, reduce, failed and worst, not "
                            f"{', '.join(sorted(unknown))}.")
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
    failed = entry.get("failed", "worst")
    if failed not in FAILED:
        raise _error(where, f"objective failed: {failed!r} is none of {', '.join(FAILED)}.")
    worst = entry.get("worst")
    if worst is not None and (isinstance(worst, bool) or not isinstance(worst, (int, float))
                              or not math.isfinite(worst)):
        raise _error(where, f"objective worst: {worst!r} is not a finite number (the score of a failed trial).")
    if worst is not None and failed == "exclude":
        raise _error(where, "objective worst is the score of failed trials; with failed: exclude they have none.")
    return Objective(metric, direction, reduce, failed, None if worst is None else float(worst))


SPEC_KEYS = ("name", "description", "base", "overrides", "groups", "space", "group_spaces", "trials", "seeds",
             "sampler", "objective", "pruning", "report_values", "truncation_sweep")


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
    groups, group_sets = _groups(data.get("groups") or {}, where)
    params = _space(data.get("space"), where)
    group_spaces = _group_spaces(data.get("group_spaces"), groups, where)
    every_param = [*params, *(p for space in group_spaces for p in space.params)]
    group_keys = set(groups) - set(group_sets) | {k for sets in group_sets.values() for s in sets.values() for k in s}
    clash = {k for p in every_param for k in p.keys} & group_keys
    if clash:
        raise _error(where, f"{', '.join(sorted(clash))} is both a group and a searched parameter.")
    sampler = data.get("sampler", "random")
    sampler = {"name": sampler} if isinstance(sampler, str) else sampler
    if not isinstance(sampler, Mapping) or sampler.get("name") not in SAMPLERS or set(sampler) - {"name", "seed"}:
        raise _error(where, f"sampler: give {{name: NAME, seed: N}} with NAME one of {', '.join(SAMPLERS)}.")
    if sampler["name"] == "grid" and any(p.kind not in ("categorical", "settings") for p in every_param):
        raise _error(where, "the grid sampler needs categorical (or settings) parameters only.")
    counts = {}
    grid_size = max(math.prod(len(p.args) for p in [*params, *space.params]) for space in [GroupSpace({}, ()),
                                                                                           *group_spaces])
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
                     pruning, str(data.get("description", "")), dict(data), tuple(group_spaces), group_sets,
                     _report_values(data.get("report_values"), where), _thresholds(data.get("truncation_sweep"), where))


def _report_values(entry: Any, where: str) -> tuple[str, ...]:
    """``report_values``: values the metrics rank (fid, is_mean), each as its log key (eval/fid)."""
    entry = [entry] if isinstance(entry, str) else entry or []
    if not isinstance(entry, list):
        raise _error(where, f"report_values is a list of evaluated values such as [fid, is_mean], not {entry!r}.")
    keys = []
    for item in entry:
        prefix, _, name = str(item).rpartition("/")
        if name not in BETTER or prefix not in ("", "eval", "eval_raw"):
            hint = close_matches(name, list(BETTER))
            raise _error(where, f"report_values: {item!r} is not a value the metrics rank (eval/NAME or "
                                f"eval_raw/NAME)." + (f" Did you mean {hint[0]!r}?" if hint else "")
                                + f" Valid names: {', '.join(sorted(BETTER))}.")
        keys.append(f"{prefix or 'eval'}/{name}")
    return tuple(dict.fromkeys(keys))


def _thresholds(entry: Any, where: str) -> tuple[float, ...]:
    """``truncation_sweep``: positive thresholds, from the least truncated (as ``ganscape eval --truncation-sweep``)."""
    if entry is None:
        return ()
    if not (isinstance(entry, list) and entry and all(isinstance(t, (int, float)) and not isinstance(t, bool)
                                                      and math.isfinite(t) and t > 0 for t in entry)):
        raise _error(where, f"truncation_sweep is a list of thresholds > 0 such as [2, 1, 0.5, 0.25], not {entry!r}.")
    return tuple(sorted({float(t) for t in entry}, reverse=True))


def _groups(groups: Any, where: str) -> tuple[dict[str, list], dict[str, dict[str, dict]]]:
    """``groups``: (each group key's values, the labelled settings of each named group). A config key lists its
    values; a name maps labels to {config key: value} (every label setting the same keys)."""
    form = ("groups maps config keys to non-empty lists of values (loss: [ns, wgan]) or a name to labelled "
            "settings (norm: {weight: {g.norm: weight, d.norm: weight}, batch: {g.norm: batch, d.norm: batch}}).")
    if not isinstance(groups, Mapping):
        raise _error(where, form)
    values, sets = {}, {}
    for key, entry in groups.items():
        key, at = str(key), f"{where}, groups, {key}"
        if isinstance(entry, list) and entry:
            _known(key, f"{where}, groups")
            values[key] = entry
            continue
        if not (isinstance(entry, Mapping) and entry
                and all(isinstance(s, Mapping) and s for s in entry.values())):
            raise _error(where, form)
        keys = {frozenset(s) for s in entry.values()}
        if len(keys) > 1:
            raise _error(at, "every label must set the same config keys, so that the groups differ only in their "
                             f"values; these set {' vs '.join(sorted(', '.join(sorted(k)) for k in keys))}.")
        for config_key in next(iter(keys)):
            _known(str(config_key), at)
        values[key] = [str(label) for label in entry]
        sets[key] = {str(label): {str(k): v for k, v in s.items()} for label, s in entry.items()}
    return values, sets


def _group_spaces(entries: Any, groups: Mapping[str, list], where: str) -> list[GroupSpace]:
    """``group_spaces``: a list of {groups: {key: [values]}, space: SPACE}, each naming group keys and values of
    the spec's ``groups``."""
    if entries is None:
        return []
    form = ("group_spaces is a list of {groups: {KEY: [VALUES]}, space: SPACE}, e.g. {groups: {penalty: "
            "[wgan_gp]}, space: {lambda: {log_uniform: [0.1, 100], keys: penalty.wgan_gp.weight}}}.")
    if not isinstance(entries, list):
        raise _error(where, form)
    spaces = []
    for i, entry in enumerate(entries):
        at = f"{where}, group_spaces[{i}]"
        if not (isinstance(entry, Mapping) and set(entry) == {"groups", "space"}
                and isinstance(entry["groups"], Mapping) and entry["groups"]):
            raise _error(at, form)
        match = {}
        for key, values in entry["groups"].items():
            if key not in groups:
                raise _error(at, f"{key!r} is not a group key; the groups are {', '.join(groups) or 'none'}.")
            values = values if isinstance(values, list) and values else [values]
            for value in values:
                if value not in groups[key]:
                    raise _error(at, f"{key}: {value!r} is not among the group's values "
                                     f"({', '.join(map(str, groups[key]))}).")
            match[str(key)] = tuple(values)
        spaces.append(GroupSpace(match, tuple(_space(entry["space"], at))))
    return spaces


STUDIES = Path(__file__).resolve().parents[1] / "studies"  # the built-in study specs, installed with ganscape


def find_yaml(name: str | Path, built_in: Path, kind: str) -> Path:
    """The file ``name`` names: a path, else the built-in ``<name>.yaml`` in ``built_in``; an error names both
    places and the built-in ones (``kind``: "study spec", "campaign spec")."""
    path = Path(name)
    if path.is_file():
        return path
    candidate = built_in / (path.name if path.suffix in (".yaml", ".yml") else f"{path.name}.yaml")
    if candidate.is_file():
        return candidate
    names = sorted(p.stem for p in built_in.glob("*.yaml"))
    hint = close_matches(path.stem, names)
    raise ConfigError(f"{kind} {str(name)!r} not found (looked at {path} and {candidate})."
                      + (f" Did you mean {hint[0]!r}?" if hint else "") + f" Built in: {', '.join(names)}.")


def find_spec(name: str | Path) -> Path:
    return find_yaml(name, STUDIES, "study spec")


def load_spec(name: str | Path) -> StudySpec:
    path = find_spec(name)
    return parse_spec(read_yaml(path), str(path), path.stem)
