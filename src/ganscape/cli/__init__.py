"""The ``ganscape`` command: argparse and printing only; the work is done by the layers below.

    ganscape train [PRESET] [key=value ...]      train a new run (no arguments: the default 2-D job)
    ganscape resume RUN_DIR [key=value ...]      continue a run from its latest checkpoint
    ganscape branch RUN_DIR [--step N] [key=value ...] --out NEW_DIR
                                                 a new run from a checkpoint of RUN_DIR, with changed settings
    ganscape eval RUN_DIR [--metrics fid,kid,...] [--samples N] [--ref test] [--step N] [--raw]
                  [--truncation T | --truncation-sweep T1,T2,...] [key=value ...]
                                                 score a checkpoint; writes RUN_DIR/eval/step_N.json
    ganscape export | sample | interpolate | fid | import
                                                 trained generators as artifacts (see cli/models.py)
    ganscape study create | run | status | report | best
                                                 hyperparameter studies on Optuna (see cli/study.py)
    ganscape campaign create | run | status | report
                                                 several studies on the same workers, one report (cli/campaign.py)
    ganscape config show [PRESET] [key=value ...] print the fully resolved config
    ganscape config keys [PREFIX]                list the config keys: type, default, description
    ganscape data download cifar10 [--root DIR]  fetch a data set's archive (checks its MD5)
    ganscape data download inception             fetch the FID Inception weights into the cache
    ganscape data info NAME [key=value ...]      build a data set and describe it
    ganscape dynamics dirac|table|spectrum ...  Dirac-GAN eigenvalues, the paper's table, a run's spectrum
    ganscape plot spectra RUN_DIR [--out PNG]   σ₀ of every weight of G and D over the steps (BigGAN's Fig. 3)
    ganscape claims run | page | list           the papers' claims checked on this machine, docs/claims.md

One module per command group registers its subcommands (``add_*_parser``); ``common`` holds what they share and
``failures`` turns any error into one line and an exit code.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from ganscape import __version__
from ganscape.cli.campaign import add_campaign_parser
from ganscape.cli.claims import add_claims_parser
from ganscape.cli.common import EXIT_BROKEN_PIPE, EXIT_BUG, EXIT_DIVERGED, EXIT_ERROR, EXIT_INTERRUPTED
from ganscape.cli.config import add_config_parser
from ganscape.cli.data import add_data_parser
from ganscape.cli.dynamics import add_dynamics_parser
from ganscape.cli.failures import explain, is_a_bug, show_warning
from ganscape.cli.models import add_model_parsers
from ganscape.cli.plot import add_plot_parsers
from ganscape.cli.run import add_run_parsers
from ganscape.cli.study import add_study_parser
from ganscape.errors import DivergenceError, GanscapeError, silence_stdout


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ganscape", description="Train, evaluate and study GANs.")
    parser.add_argument("--version", action="version", version=f"ganscape {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error (also GANSCAPE_DEBUG=1)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_run_parsers(commands)
    add_config_parser(commands)
    add_data_parser(commands)
    add_model_parsers(commands)
    add_study_parser(commands)
    add_campaign_parser(commands)
    add_dynamics_parser(commands)
    add_plot_parsers(commands)
    add_claims_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may also follow the options (argparse collects positionals before them only)
    positional = next((name for name in ("overrides", "args") if hasattr(args, name)), None)
    if extra and positional and all("=" in e and not e.startswith("-") for e in extra):
        setattr(args, positional, getattr(args, positional) + extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    warnings.showwarning = show_warning
    debug = args.debug or os.environ.get("GANSCAPE_DEBUG", "") not in ("", "0")
    try:
        return args.func(args)
    except BrokenPipeError:  # the reader went away (e.g. '| head'): stop quietly
        silence_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        if debug:
            raise
        print("\nganscape: interrupted.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except DivergenceError as err:
        print(f"ganscape: {err}", file=sys.stderr)
        return EXIT_DIVERGED
    except GanscapeError as err:
        if debug:
            raise
        print(f"ganscape: error: {err}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as err:  # noqa: BLE001 - the one boundary where any error becomes one clear line
        if debug:
            raise
        print(f"ganscape: error: {explain(err, args)}", file=sys.stderr)
        return EXIT_BUG if is_a_bug(err) else EXIT_ERROR
