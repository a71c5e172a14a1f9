"""Resolving a config: YAML presets, ``key.sub=value`` overrides, combinations, and ``load_config``.

A config is resolved in three layers: the dataclass defaults (the default job), then a YAML preset,
then command-line overrides. A preset may extend another: ``base: OTHER`` (a preset name or a YAML file,
looked for beside the preset first) gives the keys that the preset's own keys deep-merge over
(``read_preset``); the resolved config, as a run's config.yaml holds it, is the merged one.
``load_config`` validates the result and refuses unknown keys, unknown choices, wrong types and
out-of-range values, before any work starts. ``penalty.<name>.weight`` (e.g.
``penalty.wgan_gp.weight=10``, a key a study can search) sets the weight of that term of ``penalty.use``
once the layers are merged; the resolved config holds it in ``penalty.use`` only.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any, Mapping

import yaml

from ganscape.config.migrate import migrate
from ganscape.config.coerce import coerce
from ganscape.config.schema import (ARCHITECTURE_SETTINGS, Experiment, PenaltyConfig, decoded_datasets, norm_registry,
                                    penalty_registry)
from ganscape.config.values import (REPLACED_KEYS, fields_of, from_dict, invalid_config, penalty_weight_key, to_dict,
                                    validate, weighted_penalties, written)
from ganscape.errors import ConfigError, ConfigWarning, close_matches
from ganscape.store.rundir import CONFIG_NAME

def parse_overrides(items: list[str]) -> dict:
    """Turn ``["train.steps=10", "loss=hinge"]`` into nested dicts of YAML-parsed values."""
    tree: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r} must look like key=value, e.g. train.steps=5000.")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, dict) and not raw.lstrip().startswith("{"):
            value = raw.strip()  # "r1:" or "r1: 2" is text, not a YAML mapping; only {...} makes one
        _set_key(tree, key, value, f"override {item!r}")
    return tree


def settings_tree(settings: Mapping[str, Any]) -> dict:
    """Turn typed values by dotted key (``{"g_opt.lr": 1e-4, "penalty": "r1"}``) into nested dicts, as
    ``parse_overrides`` does for text: a study's trial sets its values without writing them out as text."""
    tree: dict = {}
    for key, value in settings.items():
        _set_key(tree, key, value, f"setting {key!r}")
    return tree


def _set_key(tree: dict, key: str, value: Any, what: str) -> None:
    node = tree
    parts = key.split(".")
    if len(parts) == 1:  # penalty=r1 sets penalty.use; applied per item, so it merges with penalty.x=...
        expanded = expand_shorthands({key: value})[key]
        if expanded is not value:
            (shorthand, value), = expanded.items()
            parts.append(shorthand)
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{what} conflicts with an earlier override of {part!r}.")
        node = child
    node[parts[-1]] = value


def merge(base: dict, update: Mapping) -> dict:
    """Deep-merge ``update`` into a copy of ``base``."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


PRESETS = Path(__file__).resolve().parents[1] / "configs"  # the presets installed with ganscape


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESETS.glob("*.yaml"))


def is_run_dir(path: str | Path) -> bool:
    """A folder holding a run's config.yaml (a run directory, such as a study's trial)."""
    return (Path(path) / CONFIG_NAME).is_file()


def find_preset(name: str | Path) -> Path:
    """A preset is a YAML path, a run directory (its config.yaml), or a bare name looked up in ``./configs``
    and then among the presets installed with ganscape."""
    path = Path(name)
    if path.is_file():
        return path
    if is_run_dir(path):
        return path / CONFIG_NAME
    if path.is_dir():
        raise ConfigError(f"{path} is a folder without a config.yaml; give a preset (a YAML file or a name) or a "
                          "run directory.")
    stem = path.name if path.suffix in (".yaml", ".yml") else path.name + ".yaml"
    candidates = [Path.cwd() / "configs" / stem, PRESETS / stem]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(p) for p in [path, *candidates])
    hint = close_matches(Path(stem).stem, preset_names())
    guess = f" Did you mean {hint[0]!r}?" if hint else ""
    raise ConfigError(f"config preset {str(name)!r} not found (looked at: {tried}).{guess} Installed presets: "
                      f"{', '.join(preset_names())}.")


def expand_shorthands(tree: Mapping, cls: type = Experiment) -> dict:
    """``section=value`` for a section with a ``SHORTHAND`` field means ``section.<that field>=value``.

    Applied to each layer (preset, overrides) before they are merged, so that ``penalty=r1`` on the
    command line replaces the preset's penalty list and keeps its other penalty settings.
    """
    out = dict(tree)
    for f, tp in fields_of(cls):
        shorthand = getattr(tp, "SHORTHAND", None)
        if not shorthand or f.name not in out:
            continue
        value = out[f.name]
        section_keys = {field.name for field in dataclasses.fields(tp)}
        section_keys |= {key.partition(".")[2] for key in REPLACED_KEYS if key.startswith(f.name + ".")}
        # penalty=r1, penalty={r1: 1}; a mapping value is a section of its own (penalty: {r1: {weight: 2}})
        sections = isinstance(value, Mapping) and (set(value) & section_keys
                                                   or any(isinstance(item, Mapping) for item in value.values()))
        if not sections:
            out[f.name] = {shorthand: value}
    return out


MAX_YAML_BYTES = 1 << 20  # a config is a few kilobytes
MAX_DEPTH = 6  # deeper than any config key (penalty.use[0].weight is 4 levels)


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe subset (plain data, no tags that construct objects), refusing duplicate keys."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise ConfigError(f"duplicate key {key!r} (line {key_node.start_mark.line + 1}); give each key once.")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _depth(data: Any) -> int:
    """How deeply ``data`` nests, found without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack += [(child, depth + 1) for child in children if isinstance(child, (dict, list))]
    return deepest


def read_yaml(path: Path) -> dict:
    """A YAML file of config keys: text, plain data, no duplicate keys, nested no deeper than a config."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}.") from None
    if len(raw) > MAX_YAML_BYTES:
        raise ConfigError(f"{path} is {len(raw):,} bytes, too large for a config (at most {MAX_YAML_BYTES:,}).")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a text file (not UTF-8); a config is YAML text.") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from None
    except RecursionError:
        raise ConfigError(f"{path} nests too deeply to be a config.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of config keys, got {type(data).__name__}.")
    if _depth(data) > MAX_DEPTH:
        raise ConfigError(f"{path} nests {_depth(data)} levels deep; no config key is deeper than {MAX_DEPTH}.")
    return data


def check_combinations(cfg: Experiment) -> tuple[list[str], list[str]]:
    """Combinations of valid values that cannot work (errors) or are ill-advised (warnings)."""
    norms, penalties = norm_registry(), penalty_registry()
    errors, advice = [], []
    if cfg.g.norm in norms and not norms[cfg.g.norm].for_generator:
        valid = ", ".join(sorted(n for n, norm in norms.items() if norm.for_generator))
        errors.append(f"g.norm: {cfg.g.norm!r} is a discriminator normalization; for the generator use one of: {valid}.")
    for net in ("g", "d"):
        if getattr(cfg, net).norm == "instance" and getattr(cfg, net).arch == "mlp":
            errors.append(f"{net}.norm: instance normalization needs spatial feature maps, and the mlp has none; "
                          "use layer or batch.")
    for net in ("g", "d"):
        errors += _settings_problems(net, getattr(cfg, net))
    decoded = decoded_datasets()
    if cfg.data.crop != "resize" and cfg.data.name not in decoded:
        errors.append(f"data.crop={cfg.data.crop} applies to data sets decoded from image files "
                      f"({', '.join(decoded)}), not to {cfg.data.name}.")
    names = [term.name for term in cfg.penalty.use]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        errors.append(f"penalty: {', '.join(twice)} listed twice; give each penalty once, with one weight.")
    if cfg.d.norm == "batch" and any(penalties[n].gradient_penalty for n in names):
        advice.append("batch norm in the discriminator with a gradient penalty: the penalty is defined per sample, "
                      "batch norm mixes samples (the WGAN-GP paper advises layer norm or none).")
    if cfg.loss == "wgan" and cfg.d.norm != "spectral" and not any(penalties[n].lipschitz for n in names):
        advice.append("the wgan loss with an unconstrained critic is unbounded; add penalty=wgan_gp, "
                      "penalty=wgan_clip, or d.norm=spectral.")
    if "wgan_clip" in names and cfg.loss != "wgan":
        advice.append(f"wgan_clip is the Wasserstein critic's constraint; with loss={cfg.loss} it only limits D.")
    if cfg.augment.noise_anneal_steps and not cfg.augment.noise:
        advice.append("augment.noise_anneal_steps has no effect without the instance_noise penalty, which is now "
                      "augment.noise (its std).")
    if cfg.penalty.pixel_scale != "data" and not any(penalties[n].gradient_penalty for n in names):
        advice.append(f"penalty.pixel_scale={cfg.penalty.pixel_scale} has no effect without a gradient penalty.")
    if cfg.penalty.lazy_interval > 1 and not any(penalties[n].lazy for n in names):
        lazy = ", ".join(sorted(n for n, p in penalties.items() if p.lazy))
        advice.append(f"penalty.lazy_interval={cfg.penalty.lazy_interval} has no effect: only {lazy} are computed "
                      "lazily, and none of them is in penalty.use.")
    return errors, advice + _ignored_augment_keys(cfg.augment)


def _ignored_augment_keys(augment) -> list[str]:
    """Advice for ``augment.*`` keys changed from their defaults that the chosen augmentation does not read."""
    default = type(augment)()
    changed = [name for name in ("policy", "ada_p", "ada_target", "ada_interval", "ada_speed_images", "ada_groups")
               if getattr(augment, name) != getattr(default, name)]
    reader = {"policy": "diffaugment"}
    ignored = [name for name in changed if reader.get(name, "ada") != augment.method]
    return [f"augment.{name} has no effect without augment={reader.get(name, 'ada')}"
            f"{f' (augment={augment.method} is chosen)' if augment.method else ' (no augmentation is chosen)'}."
            for name in ignored]


def _settings_problems(net: str, net_cfg) -> list[str]:
    """Settings of another architecture than the network's (a config made in code; files are checked as read)."""
    expected = ARCHITECTURE_SETTINGS.chosen(net_cfg.arch)
    if net_cfg.settings is None or (expected is not None and isinstance(net_cfg.settings, expected)):
        return []
    having = ", ".join(ARCHITECTURE_SETTINGS.classes()) or "none"
    whose = f"settings of type {expected.__name__}" if expected else "no settings"
    return [f"{net}.settings: {net_cfg.arch} takes {whose}, not {type(net_cfg.settings).__name__} (architectures with "
            f"settings: {having})."]


def upgrade_written_config(tree: dict, path: Path) -> dict:
    """A run's config.yaml as an older ganscape wrote it, in today's keys (with a warning)."""
    penalty = tree.get("penalty")
    if isinstance(penalty, Mapping) and "name" in penalty and "use" not in penalty:
        names, weights = penalty.get("name") or [], penalty.get("weight") or []
        use = [f"{name}:{weight}" for name, weight in zip(names, weights)] if weights else list(names)
        rest = {k: v for k, v in penalty.items() if k not in ("name", "weight")}
        tree = {**tree, "penalty": {**rest, "use": use}}
        warnings.warn(f"{path} was written by an older ganscape: its penalty.name and penalty.weight are read as "
                      f"penalty={','.join(use) or 'none'}.", ConfigWarning, stacklevel=3)
    return tree


def load_config(preset: str | Path | None = None, overrides: list[str] = (), written: bool = False,
                settings: Mapping[str, Any] | None = None) -> Experiment:
    """Resolve defaults + preset + overrides (+ ``settings``: typed values by dotted key, last) into a validated
    Experiment.

    ``written``: the preset is a config that ganscape wrote (a run's config.yaml), which may use keys of an
    older version. A run directory as the preset is its config.yaml without ``run.*`` (which places that run):
    the settings of a new run. Ill-advised but workable combinations are reported as ``ConfigWarning`` warnings.
    """
    if not preset:
        return resolve({}, overrides, settings)
    path, of_run = find_preset(preset), is_run_dir(preset)
    data = read_preset(path)
    if written or of_run:
        data = upgrade_written_config(data, path)
    return resolve(run_settings(data) if of_run else data, overrides, settings)


BASE_KEY = "base"  # the key that names the preset a preset extends


def read_preset(path: Path) -> dict:
    """A preset's keys, with ``base: OTHER`` resolved: the base's keys (its own base resolved first), then this
    file's keys deep-merged over them. Each layer is read in today's keys with its shorthands expanded before
    the merge, so ``penalty: r1`` in a preset replaces its base's penalty list as it would on the command line.
    """
    chain: list[Path] = []
    layers: list[dict] = []
    while True:
        resolved = path.resolve()
        if resolved in chain:
            names = " -> ".join(str(p) for p in [*chain, resolved])
            raise ConfigError(f"preset inheritance cycle: {names}; remove a base: from one of these files.")
        chain.append(resolved)
        data = read_yaml(path)
        base = data.pop(BASE_KEY, None)
        layers.append(migrate(expand_shorthands(data)))
        if base is None:
            break
        path = _base_preset(base, path)
    merged: dict = {}
    for layer in reversed(layers):  # the root base first, the preset asked for last
        merged = merge(merged, layer)
    return merged


def _base_preset(base: Any, child: Path) -> Path:
    """The file that ``base: NAME`` in ``child`` names: a preset beside ``child`` (so an installed preset extends
    an installed one), else any preset ``find_preset`` finds (a path, ``./configs``, the installed presets)."""
    if not isinstance(base, str) or not base.strip():
        raise ConfigError(f"{child}: base must name a preset (a built-in name or a YAML file), got {base!r}.")
    beside = child.parent / (base if Path(base).suffix in (".yaml", ".yml") else base + ".yaml")
    if beside.is_file():
        return beside
    try:
        return find_preset(base)
    except ConfigError as err:
        raise ConfigError(f"{child}: base: {err}") from None


def run_settings(tree: Mapping) -> dict:
    """A run's config as a preset for new runs: without run.*, which says where that run is (and what it was
    branched from)."""
    return {key: value for key, value in tree.items() if key != "run"}


def resolve(tree: Mapping, overrides: list[str] = (), settings: Mapping[str, Any] | None = None) -> Experiment:
    """A validated Experiment from plain data (a preset's, or a config stored in a file), overrides and typed
    ``settings`` by dotted key (applied last)."""
    problems: list[str] = []
    # each layer in today's keys before they merge, so an old key and its new name override each other
    layers = [migrate(tree), migrate(parse_overrides(list(overrides))), migrate(settings_tree(settings or {}))]
    merged, weights = split_penalty_weights(merge(merge(layers[0], layers[1]), layers[2]), problems)
    cfg = from_dict(merged, problems=problems)
    problems += set_penalty_weights(cfg, weights)
    problems += validate(cfg)
    if not problems:
        errors, advice = check_combinations(cfg)
        problems += errors
        for message in advice:
            warnings.warn(message, ConfigWarning, stacklevel=2)
    if problems:
        raise ConfigError(invalid_config(problems))
    return cfg


def split_penalty_weights(tree: Mapping, problems: list[str]) -> tuple[dict, dict[str, Any]]:
    """``tree`` without its ``penalty.<name>.weight`` keys, and those weights by penalty name (as written).

    A weight key names one term of ``penalty.use``, so it applies once the layers are merged (the term may
    come from another layer). Malformed keys (an unknown penalty, a key other than weight) go to ``problems``.
    """
    penalty = tree.get("penalty")
    if not isinstance(penalty, Mapping):
        return dict(tree), {}
    fields = {f.name for f in dataclasses.fields(PenaltyConfig)}
    sections = {name: value for name, value in penalty.items() if name not in fields and isinstance(value, Mapping)}
    weights, known = {}, weighted_penalties()
    for name, section in sections.items():
        key = penalty_weight_key(name)
        if name in penalty_registry() and name not in known:  # instance noise: a stage of the D-input pipeline
            problems.append(f"{key}: {name} transforms D's inputs, and a run's config holds it in augment.* (instance "
                            "noise: augment.noise=STD).")
        elif name not in known:
            hint = close_matches(str(name), known)
            guess = f" Did you mean {penalty_weight_key(hint[0])!r}?" if hint else ""
            problems.append(f"{key}: unknown penalty {name!r}.{guess} Valid: {', '.join(sorted(known))}.")
        elif set(section) != {"weight"}:
            extra = ", ".join(sorted(str(k) for k in section if k != "weight"))
            problems.append(f"penalty.{name}: a penalty's only key is its weight ({key}=W)"
                            + (f", not {extra}." if extra else "."))
        else:
            weights[name] = section["weight"]
    rest = {name: value for name, value in penalty.items() if name not in sections}
    return {**tree, "penalty": rest}, weights


def set_penalty_weights(cfg: Experiment, weights: Mapping[str, Any]) -> list[str]:
    """Set the weight of each named term of ``cfg.penalty.use`` (in place); the problems, each saying the fix."""
    problems, use = [], list(cfg.penalty.use)
    names = [term.name for term in use]
    for name, raw in weights.items():
        key = penalty_weight_key(name)
        try:
            weight = coerce(raw, float, key)
        except ConfigError as err:
            problems.append(str(err))
            continue
        if weight <= 0:
            meaning = penalty_registry()[name].weight_meaning
            problems.append(f"{key} must be > 0, got {weight!r} (it is {name}'s {meaning}; to turn {name} off, leave "
                            "it out of penalty.use).")
        elif name not in names:
            listed = ",".join(written(term) for term in use) or "none"
            problems.append(f"{key}: {name} is not in penalty.use ({listed}); add it with penalty={name}:W.")
        else:
            use[names.index(name)] = dataclasses.replace(use[names.index(name)], weight=weight)
    cfg.penalty.use = use
    return problems


def dump_yaml(cfg: Experiment) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
