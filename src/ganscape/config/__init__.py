"""Typed experiment configuration: dataclasses, YAML presets and ``key.sub=value`` overrides.

``schema`` holds the dataclasses (one per section) and their constraints, ``values`` turns plain data
into configs and checks them, ``files`` reads presets and overrides and resolves a config
(``load_config``). Everything public is importable from ``ganscape.config``.
"""

from ganscape.config.files import (PRESETS, check_combinations, dump_yaml, expand_shorthands, find_preset,
                                   load_config, merge, parse_overrides, preset_names, read_yaml, resolve, run_settings,
                                   upgrade_written_config)
from ganscape.config.schema import (CROPS, LATENT_DISTRIBUTIONS, SPLITS, CheckpointConfig, DataConfig, EvalConfig,
                                    Experiment, LatentConfig, LogConfig, MetricsConfig, NetConfig, OptimConfig,
                                    PenaltyConfig, PenaltyTerm, RunConfig, TrainConfig)
from ganscape.config.values import (RESUMABLE_KEYS, KeyInfo, all_keys, coerce, config_differences, describe_keys,
                                    flatten, from_dict, parse_penalties, to_dict, validate, written)

__all__ = ["CROPS", "LATENT_DISTRIBUTIONS", "PRESETS", "RESUMABLE_KEYS", "SPLITS", "CheckpointConfig", "DataConfig",
           "EvalConfig", "Experiment", "KeyInfo", "LatentConfig", "LogConfig", "MetricsConfig", "NetConfig",
           "OptimConfig", "PenaltyConfig", "PenaltyTerm", "RunConfig", "TrainConfig", "all_keys", "check_combinations",
           "coerce", "config_differences", "describe_keys", "dump_yaml", "expand_shorthands", "find_preset", "flatten",
           "from_dict", "load_config", "merge", "parse_overrides", "parse_penalties", "preset_names",
           "read_yaml", "resolve", "run_settings", "to_dict", "upgrade_written_config", "validate", "written"]
