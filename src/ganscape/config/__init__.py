"""Typed experiment configuration: dataclasses, YAML presets and ``key.sub=value`` overrides.

``schema`` holds the dataclasses (one per section) and their constraints, ``values`` turns plain data
into configs and checks them, ``files`` reads presets and overrides and resolves a config
(``load_config``). Everything public is importable from ``ganscape.config``.
"""

from ganscape.config.files import (PRESETS, check_combinations, dump_yaml, expand_shorthands, find_preset,
                                   load_config, merge, parse_overrides, preset_names, read_yaml, resolve,
                                   upgrade_written_config)
from ganscape.config.schema import (CROPS, LATENT_DISTRIBUTIONS, SPLITS, CheckpointConfig, DataConfig, EvalConfig,
                                    Experiment, LatentConfig, LogConfig, MetricsConfig, NetConfig, OptimConfig,
                                    PenaltyConfig, PenaltyTerm, RunConfig, TrainConfig)
from ganscape.config.values import (RESUMABLE_KEYS, all_keys, coerce, config_differences, flatten, from_dict,
                                    parse_penalties, to_dict, validate)

__all__ = ["CROPS", "LATENT_DISTRIBUTIONS", "PRESETS", "RESUMABLE_KEYS", "SPLITS", "CheckpointConfig", "DataConfig",
           "EvalConfig", "Experiment", "LatentConfig", "LogConfig", "MetricsConfig", "NetConfig", "OptimConfig",
           "PenaltyConfig", "PenaltyTerm", "RunConfig", "TrainConfig", "all_keys", "check_combinations", "coerce",
           "config_differences", "dump_yaml", "expand_shorthands", "find_preset", "flatten", "from_dict",
           "load_config", "merge", "parse_overrides", "parse_penalties", "preset_names", "read_yaml", "resolve", "to_dict",
           "upgrade_written_config", "validate"]
