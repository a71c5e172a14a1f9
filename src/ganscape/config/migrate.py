"""Migrations: configs written with keys that have since moved, read in today's keys.

``MIGRATIONS`` is an ordered list of functions, each taking a raw config tree (plain nested dicts as read
from YAML, JSON or a checkpoint; the keys of ``Experiment``) and returning it in newer keys. Each one is
idempotent (a tree already in today's keys comes back equal) and leaves its input unchanged. ``migrate``
applies them in order; ``ganscape.config`` calls it on every raw config before validation (presets, a run's
config.yaml, a checkpoint's config, an exported model's provenance config, a study's base and overrides)
and on each layer (preset, command-line overrides) before the layers are merged, so the old dotted
overrides keep working: ``g.biggan.attention=[32]`` sets ``g.settings.attention``.

A key that moves gets one function here, appended to ``MIGRATIONS`` (older moves first).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from ganscape.objectives.d_input import instance_noise_to_augment

Tree = dict[str, Any]

# The ``biggan`` section of NetConfig before architectures owned their settings (``g.settings``), with the
# defaults that version wrote into every config, whatever the architecture.
BIGGAN_SECTION_DEFAULTS = {"attention": [64], "shared_dim": 128, "hierarchical": True, "init": "ortho",
                           "sn_eps": 1e-6, "bn_eps": 1e-5}
BIGGAN_FAMILY = ("biggan", "biggan_deep")


def net_biggan_to_settings(net: Any) -> Any:
    """One network's ``biggan`` section as its ``settings``; dropped when the network is not a BigGAN and the
    section holds only the defaults (as every older config of another architecture has it)."""
    if not isinstance(net, Mapping) or not isinstance(net.get("biggan"), Mapping):
        return net
    out = dict(net)
    old = out.pop("biggan")
    arch = out.get("arch")
    if arch is not None and arch not in BIGGAN_FAMILY and _holds_only_defaults(old):
        return out
    new = out.get("settings")
    out["settings"] = {**old, **new} if isinstance(new, Mapping) else old  # a key given in both: the new one
    return out


def _holds_only_defaults(section: Mapping) -> bool:
    return all(key in BIGGAN_SECTION_DEFAULTS and _same(value, BIGGAN_SECTION_DEFAULTS[key])
               for key, value in section.items())


def _same(value: Any, default: Any) -> bool:
    """Equal, reading a YAML list of numbers or a float written as text the way the config would."""
    try:
        return value == default or float(value) == default
    except (TypeError, ValueError):
        return False


def biggan_sections_to_settings(tree: Tree) -> Tree:
    """``g.biggan.*`` and ``d.biggan.*`` -> ``g.settings.*`` and ``d.settings.*``."""
    return {key: net_biggan_to_settings(value) if key in ("g", "d") else value for key, value in tree.items()}


# Flat metric settings of MetricsConfig before each metric owned its settings: old key -> (metric, key).
MOVED_METRIC_KEYS = {
    "is_splits": ("is", "splits"),
    "kid_subsets": ("kid", "subsets"),
    "kid_subset_size": ("kid", "subset_size"),
    "pr_k": ("pr", "k"),
    "msssim_batch": ("msssim", "batch"),
    "msssim_batches": ("msssim", "batches"),
    "recon_images": ("recon", "images"),
    "recon_steps": ("recon", "steps"),
    "recon_lr": ("recon", "lr"),
    "recon_restarts": ("recon", "restarts"),
}


def metric_settings_to_sections(tree: Tree) -> Tree:
    """``metrics.kid_subsets`` -> ``metrics.kid.subsets`` and the other flat metric keys (``MOVED_METRIC_KEYS``)."""
    metrics = tree.get("metrics")
    if not isinstance(metrics, Mapping) or not set(metrics) & set(MOVED_METRIC_KEYS):
        return tree
    moved = {key: value for key, value in metrics.items() if key not in MOVED_METRIC_KEYS}
    for key, value in metrics.items():
        if key in MOVED_METRIC_KEYS:
            metric, leaf = MOVED_METRIC_KEYS[key]
            section = moved.get(metric)
            if section is None:
                moved[metric] = {leaf: value}
            elif isinstance(section, Mapping) and leaf not in section:  # a key given in both forms: the new one
                moved[metric] = {**section, leaf: value}
    return {**tree, "metrics": moved}


MIGRATIONS: list[Callable[[Tree], Tree]] = [
    biggan_sections_to_settings,
    metric_settings_to_sections,
    instance_noise_to_augment,
]


def migrate(tree: Mapping) -> Tree:
    """A raw config in today's keys: every migration applied in order."""
    out = dict(tree)
    for migration in MIGRATIONS:
        out = migration(out)
    return out


def migrate_network(net: Mapping) -> Tree:
    """One network's settings as plain data (a ``NetConfig``, as in an exported model's config.json) in today's
    keys: migrated as the ``g`` section of a config."""
    return migrate({"g": dict(net)})["g"]
