"""``ganscape config show`` and ``config keys``: inspect configs."""

from __future__ import annotations

import argparse

from ganscape.cli.common import split_arguments
from ganscape.errors import ConfigError, DataError


def cmd_config_show(args) -> int:
    import torch

    from ganscape.config import dump_yaml, load_config
    from ganscape.data import build_dataset, declared_shape
    from ganscape.nets import ModelSpec, build_discriminator, build_generator, count_parameters

    preset, overrides = split_arguments(args.args)
    cfg = load_config(preset, overrides)
    print(dump_yaml(cfg), end="")
    data = declared_shape(cfg)  # the networks' shapes depend on the data, known from the config where it fixes them
    if data is None:
        try:
            data = build_dataset(cfg)
        except DataError as err:
            print(f"# parameters: not counted, the data set is not available: {err}")
            return 0
    try:
        with torch.device("meta"):  # count parameters without allocating them
            spec = ModelSpec.of_run(cfg, data)
            G, D = build_generator(cfg.g, spec), build_discriminator(cfg.d, spec)
    except (RuntimeError, ValueError, OverflowError) as err:  # sizes no machine can hold
        raise ConfigError(f"the networks of this config cannot be built: {err}") from None
    print(f"# parameters: G {count_parameters(G):,}  D {count_parameters(D):,}")
    return 0


def cmd_config_keys(args) -> int:
    from ganscape.config import describe_keys, written

    every = describe_keys()
    rows = [("KEY", "TYPE", "DEFAULT", "DESCRIPTION")]
    rows += [(row.key, row.type, written(row.default), row.help) for row in every if row.key.startswith(args.prefix)]
    if len(rows) == 1:
        sections = sorted({row.key.partition(".")[0] for row in every})
        raise ConfigError(f"no config key starts with {args.prefix!r}; the sections are {', '.join(sections)}.")
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    return 0


def add_config_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``config show|keys`` on the command's subparsers."""
    config = commands.add_parser("config", help="inspect configs")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    show = config_commands.add_parser("show", help="print the fully resolved config and parameter counts")
    show.add_argument("args", nargs="*", metavar="[PRESET] [key=value]")
    show.set_defaults(func=cmd_config_show)
    keys = config_commands.add_parser("keys", help="list every config key with its type, default and meaning")
    keys.add_argument("prefix", nargs="?", default="", metavar="PREFIX",
                      help="only the keys that start with it, e.g. g_opt or train.")
    keys.set_defaults(func=cmd_config_keys)
