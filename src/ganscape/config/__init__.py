"""Typed experiment configuration: dataclasses, YAML presets and ``key.sub=value`` overrides.

``schema`` holds the dataclasses (one per section) and their constraints, ``coerce`` converts one value
to a field's type, ``values`` turns plain data into configs and checks them, ``migrate`` reads keys of
older versions in today's, ``files`` reads presets and overrides and resolves a config (``load_config``).
Everything public is importable from ``ganscape.config``.
"""

from ganscape.config.files import (PRESETS, check_combinations, dump_yaml, expand_shorthands, find_preset,
                                   load_config, merge, parse_overrides, preset_names, read_yaml, resolve, run_settings,
                                   upgrade_written_config)
from ganscape.config.migrate import MIGRATIONS, migrate, migrate_network
from ganscape.config.schema import (ARCHITECTURE_SETTINGS, CROPS, LATENT_DISTRIBUTIONS, METRIC_SETTINGS, SPLITS,
                                    CheckpointConfig, DataConfig, EvalConfig, Experiment, LatentConfig, LogConfig,
                                    MetricsConfig, NetConfig, OptimConfig, PenaltyConfig, PenaltyTerm, Plugins,
                                    RunConfig, TrainConfig)
from ganscape.config.values import (RESUMABLE_KEYS, KeyInfo, all_keys, coerce, config_differences, describe_keys,
                                    flatten, from_dict, parse_penalties, to_dict, validate, written)

__all__ = ["ARCHITECTURE_SETTINGS", "CROPS", "LATENT_DISTRIBUTIONS", "METRIC_SETTINGS", "MIGRATIONS", "PRESETS",
           "RESUMABLE_KEYS", "SPLITS", "CheckpointConfig", "DataConfig", "EvalConfig", "Experiment", "KeyInfo",
           "LatentConfig", "LogConfig", "MetricsConfig", "NetConfig", "OptimConfig", "PenaltyConfig", "PenaltyTerm",
           "Plugins", "RunConfig", "TrainConfig", "all_keys", "check_combinations", "coerce", "config_differences",
           "describe_keys", "dump_yaml", "expand_shorthands", "find_preset", "flatten", "from_dict", "load_config",
           "merge", "migrate", "migrate_network", "parse_overrides", "parse_penalties", "preset_names", "read_yaml",
           "resolve", "run_settings", "to_dict", "upgrade_written_config", "validate", "written"]
