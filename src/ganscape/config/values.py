"""Turning plain data (YAML, command-line values) into configs and back, and checking them.

``from_dict`` refuses unknown keys (suggesting the closest valid ones, or naming what replaced a key
that existed once) and values of the wrong type; ``validate`` lists every value outside its choices
or range. Numbers must be finite and integers fit in 64 bits.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path
from typing import Any, Mapping, NamedTuple

from ganscape.config.coerce import coerce
from ganscape.config.migrate import migrate
from ganscape.config.schema import Experiment, PenaltyTerm, penalty_registry
from ganscape.errors import ConfigError, close_matches

class KeyInfo(NamedTuple):
    """One config key: its type's name, its default and its one-line description."""

    key: str
    type: str
    default: Any
    help: str


def describe_keys(cfg: Any = None, prefix: str = "") -> list[KeyInfo]:
    """Every dotted key a config accepts, in schema order, with its value in ``cfg``.

    Without ``cfg``: the defaults, and the settings keys of every plugin (``g.settings.*`` of each
    architecture that has settings, its description saying which); with it, those of ``cfg``'s plugins.
    """
    every_plugin = cfg is None
    return _describe(Experiment() if cfg is None else cfg, prefix, every_plugin)


def _describe(cfg: Any, prefix: str, every_plugin: bool, reader: str = "") -> list[KeyInfo]:
    rows = []
    for f, tp in fields_of(type(cfg)):
        name, value = prefix + f.name, getattr(cfg, f.name)
        plugins = f.metadata.get("plugins")
        if plugins and plugins.chosen_by:
            rows += _chosen_plugin_rows(plugins, getattr(cfg, plugins.chosen_by), value, name + ".", every_plugin)
        elif plugins:
            for section, settings in value.items():
                rows += _describe(settings, f"{prefix}{section}.", every_plugin)
        elif dataclasses.is_dataclass(tp):
            rows += _describe(value, name + ".", every_plugin)
        else:
            rows.append(KeyInfo(name, type_name(tp), value, reader + f.metadata.get("help", "")))
    return rows


def _chosen_plugin_rows(plugins: Any, chosen: str, value: Any, prefix: str, every_plugin: bool) -> list[KeyInfo]:
    """The keys of the chosen plugin's settings, or (``every_plugin``) of every plugin's, saying whose they are."""
    if not every_plugin:
        return [] if value is None else _describe(value, prefix, False, f"{chosen}: ")
    readers: dict[type, list[str]] = {}
    for name, settings in plugins.classes().items():
        readers.setdefault(settings, []).append(name)
    return [row for settings, names in readers.items()
            for row in _describe(settings(), prefix, True, f"{', '.join(names)}: ")]


def all_keys() -> list[str]:
    """Every dotted key a config accepts, e.g. ``train.steps``."""
    return [row.key for row in describe_keys()]


def penalty_weight_key(name: str) -> str:
    """The key that sets the weight of penalty ``name`` in ``penalty.use``: ``penalty.<name>.weight``."""
    return f"penalty.{name}.weight"


def weighted_penalties() -> list[str]:
    """The penalties a run's ``penalty.use`` holds with a weight: all but those that transform D's inputs
    (instance noise, which a run's config holds as ``augment.noise``)."""
    from ganscape.objectives.penalties import D_INPUT

    return [name for name, penalty in penalty_registry().items() if penalty.kind != D_INPUT]


def penalty_weight_keys() -> list[str]:
    """``penalty.<name>.weight`` of every weighted penalty: keys beside ``all_keys`` that set one term's weight
    (``config.files.set_penalty_weights``), so a study can search a penalty's weight."""
    return [penalty_weight_key(name) for name in weighted_penalties()]


def weighted_penalty(key: str) -> str | None:
    """The penalty whose weight ``key`` sets (``penalty.wgan_gp.weight`` -> wgan_gp), or None."""
    return key.split(".")[1] if key in penalty_weight_keys() else None


def type_name(tp: Any) -> str:
    """``int``, ``list[str]``; items written in a short form by it (``list[name:weight]``)."""
    if typing.get_origin(tp) is list:
        return f"list[{type_name(typing.get_args(tp)[0])}]"
    return getattr(tp, "FORM", None) or tp.__name__


def written(value: Any) -> str:
    """A config value as it is written on the command line (``key=<this>`` sets it)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value or '""'
    if isinstance(value, list):
        return "[" + ", ".join(written(item) for item in value) + "]"
    if isinstance(value, PenaltyTerm):
        return f"{value.name}:{value.weight}"
    return str(value)


def fields_of(cls: type) -> list[tuple[dataclasses.Field, Any]]:
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in dataclasses.fields(cls)]


# Keys that existed once, and what replaced them.
REPLACED_KEYS = {
    "penalty.name": "penalty.name and penalty.weight were replaced by one list of penalties with their weights: "
                    "penalty=wgan_gp:1,l2:0.01 on the command line, penalty: {use: [wgan_gp:1, l2:0.01]} in YAML",
}
REPLACED_KEYS["penalty.weight"] = REPLACED_KEYS["penalty.name"]


def _unknown_key_message(key: str, section_keys: str = "") -> str:
    if key in REPLACED_KEYS:
        return f"unknown config key {key!r}: {REPLACED_KEYS[key]}."
    section, _, leaf = key.rpartition(".")
    if section == "penalty" and leaf in penalty_registry():
        return (f"unknown config key {key!r}: list penalties with their weights, e.g. penalty={leaf}:1 on the "
                f"command line or penalty: {{use: [{leaf}:1]}} in YAML; {penalty_weight_key(leaf)}=W sets the weight "
                "of a penalty in use.")
    valid = all_keys()
    leaves = {k: k.rsplit(".", 1)[-1] for k in valid}
    # Whole-key matches first ("trian.steps"), then keys whose last part matches ("steps", "lr").
    guesses = close_matches(key, valid)
    similar_leaves = close_matches(key.rsplit(".", 1)[-1], set(leaves.values()))
    for leaf in similar_leaves:
        guesses += [k for k in valid if leaves[k] == leaf and k not in guesses]
    hint = f" Did you mean {', '.join(repr(g) for g in guesses[:3])}?" if guesses else ""
    listed = f" Valid: {section_keys}." if section_keys else " Run 'ganscape config keys' to list every key."
    return f"unknown config key {key!r}.{hint}{listed}"


def from_dict(data: Mapping[str, Any], cls: type = Experiment, prefix: str = "",
              problems: list[str] | None = None) -> Any:
    """Build a dataclass config from nested plain data, refusing unknown keys and wrong types.

    An ``Experiment`` is migrated first (``config.migrate``: keys of older versions in today's). Every
    problem is found in one pass (a bad value leaves its field at the default meanwhile): appended to
    ``problems`` when given, else raised together as one ConfigError.
    """
    found = [] if problems is None else problems
    if cls is Experiment and isinstance(data, Mapping):
        data = migrate(data)
    cfg = _build(data, cls, prefix, found)
    if problems is None and found:
        raise ConfigError(invalid_config(found))
    return cfg


def invalid_config(problems: list[str]) -> str:
    return "invalid config:\n  " + "\n  ".join(problems)


def _build(data: Any, cls: type, prefix: str, problems: list[str], owner: str = "") -> Any:
    """``cls`` from ``data``; ``owner`` names the plugin whose settings ``cls`` holds (for the messages)."""
    if not isinstance(data, Mapping):
        problems.append(f"{prefix.rstrip('.') or 'the config'} must be a mapping, got {data!r}.")
        return cls()
    fields = {f.name: (f, tp) for f, tp in fields_of(cls)}
    sections = {name: (f, f.metadata["plugins"].classes()) for name, (f, _) in fields.items()
                if f.metadata.get("plugins") and not f.metadata["plugins"].chosen_by}
    kwargs, chosen, composed = {}, {}, {name: f.default_factory() for name, (f, _) in sections.items()}
    for name, value in data.items():
        key = prefix + str(name)
        field_, tp = fields.get(name, (None, None))
        plugin_section = next((field_name for field_name, (_, classes) in sections.items() if name in classes), None)
        if field_ is not None and field_.metadata.get("plugins") and field_.metadata["plugins"].chosen_by:
            chosen[name] = value  # built once the field that chooses the plugin is known
        elif plugin_section is not None:
            settings = sections[plugin_section][1][name]
            composed[plugin_section][name] = _build(value, settings, key + ".", problems, name)
        elif field_ is None or name in sections:
            problems.append(_unknown_in(key, value, cls, owner))
        elif dataclasses.is_dataclass(tp):
            kwargs[name] = _build(value, tp, key + ".", problems)
        else:
            try:
                kwargs[name] = coerce(value, tp, key)
            except ConfigError as err:
                problems.append(str(err))
    for name, value in chosen.items():
        kwargs[name] = _build_chosen(value, fields[name][0], cls, kwargs, prefix + name, problems)
    return cls(**kwargs, **composed)


def _unknown_in(key: str, value: Any, cls: type, owner: str) -> str:
    while isinstance(value, Mapping) and len(value) == 1:  # report "trian.steps", not "trian"
        (child, value), = value.items()
        key += f".{child}"
    return _unknown_key_message(key, f"the settings of {owner}: {', '.join(f.name for f in dataclasses.fields(cls))}"
                                if owner else "")


def _build_chosen(value: Any, f: dataclasses.Field, cls: type, kwargs: dict, key: str, problems: list[str]) -> Any:
    """The settings of the plugin chosen by a sibling field (``g.settings`` of ``g.arch``), or None."""
    plugins = f.metadata["plugins"]
    name = kwargs.get(plugins.chosen_by, cls.__dataclass_fields__[plugins.chosen_by].default)
    if name not in plugins.registry():
        return None  # an unknown choice, reported by validate
    settings = plugins.chosen(name)
    if settings is not None:
        return _build(value, settings, key + ".", problems, name)
    if value not in (None, {}):
        having = ", ".join(plugins.classes()) or "none"
        problems.append(f"{key}: {name} has no settings; remove {key}.* (architectures with settings: {having}).")
    return None


def to_dict(cfg: Any) -> dict:
    """A config as plain nested data: a plugin's settings only where the plugin has them, the sections of
    composed plugin settings (``metrics.kid``) beside the fields of their parent."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value, plugins = getattr(cfg, f.name), f.metadata.get("plugins")
        if plugins and not plugins.chosen_by:
            out |= {name: to_dict(settings) for name, settings in value.items()}
        elif plugins and value is None:
            continue
        elif dataclasses.is_dataclass(value):
            out[f.name] = to_dict(value)
        elif isinstance(value, list):
            out[f.name] = [to_dict(item) if dataclasses.is_dataclass(item) else item for item in value]
        else:
            out[f.name] = value
    return out


def flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"steps": 5}}`` as ``{"train.steps": 5}``."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            out |= flatten(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


# Keys that do not change a run's trajectory: a resumed run may change them, and ``config.yaml`` may
# differ from a checkpoint's config in them.
RESUMABLE_KEYS = ("train.steps", "train.device", "train.threads", "log.", "eval.", "metrics.", "checkpoint.",
                  "collapse.")


def config_differences(a: Experiment, b: Experiment, ignore: tuple[str, ...] = ()) -> list[tuple[str, Any, Any]]:
    """(key, value in a, value in b) for every key whose values differ, except keys starting with ``ignore``
    and the run's name and place (``run.*``: a run directory may be moved)."""
    flat_a, flat_b = flatten(to_dict(a)), flatten(to_dict(b))
    ignore = (*ignore, "run.")
    return [(key, flat_a[key], flat_b[key]) for key in flat_a
            if flat_a[key] != flat_b[key] and not key.startswith(ignore)]


def validate(cfg: Any, prefix: str = "") -> list[str]:
    """Return a message for every value outside its allowed choices or range."""
    problems = []
    for f, tp in fields_of(type(cfg)):
        key, value = prefix + f.name, getattr(cfg, f.name)
        plugins = f.metadata.get("plugins")
        if plugins:  # one plugin's settings, or a section per plugin beside this config's fields
            sections = {f.name: value} if plugins.chosen_by else value
            for name, settings in sections.items():
                problems += validate(settings, f"{prefix}{name}.") if settings is not None else []
            continue
        if dataclasses.is_dataclass(tp):
            problems += validate(value, key + ".")
            continue
        if typing.get_origin(tp) is list and dataclasses.is_dataclass(typing.get_args(tp)[0]):
            for i, item in enumerate(value):
                problems += validate(item, f"{key}[{i}].")
            continue
        meta = f.metadata
        items = value if isinstance(value, list) else [value]
        if "choices" in meta:
            known = meta["choices"]()
            for item in items:
                if item not in known:
                    hint = close_matches(item, known)
                    guess = f" Did you mean {hint[0]!r}?" if hint else ""
                    valid = ", ".join(sorted(k for k in known if k)) + (" (or empty)" if "" in known else "")
                    problems.append(f"{key}: unknown choice {item!r}.{guess} Valid: {valid}.")
        if "pattern" in meta and not re.fullmatch(meta["pattern"][0], value):
            problems.append(f"{key}: {value!r} is not one of {meta['pattern'][1]}.")
        if meta.get("path"):
            problems += _path_problems(key, value)
        bounds = [("min", lambda v, b: v >= b, ">="), ("max", lambda v, b: v <= b, "<="),
                  ("above", lambda v, b: v > b, ">"), ("below", lambda v, b: v < b, "<")]
        for name, ok, sign in bounds:
            for item in items:
                if name in meta and not ok(item, meta[name]):
                    problems.append(f"{key} must be {sign} {meta[name]}, got {item!r}.")
    return problems


MAX_NAME_BYTES = 255  # the longest file name most file systems take


def _path_problems(key: str, value: str) -> list[str]:
    """A path that the file system will refuse, said before any work starts."""
    if "\0" in value:
        return [f"{key} contains a NUL character."]
    long = [part for part in Path(value).parts if len(part.encode()) > MAX_NAME_BYTES]
    if long:
        return [f"{key}: {long[0][:40]!r}... is {len(long[0].encode())} bytes long; a file name may have at most "
                f"{MAX_NAME_BYTES}."]
    return []


def parse_penalties(value: Any, key: str = "penalty") -> list[PenaltyTerm]:
    """Penalty terms from any of the config's forms: ``"wgan_gp:1,l2"``, a list of items, or a mapping
    of names to weights (unknown names and malformed items raise a ConfigError naming ``key``)."""
    return coerce(value, list[PenaltyTerm], key)
