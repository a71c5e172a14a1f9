"""``ganscape plot``: pictures of what a run logged.

    ganscape plot spectra RUN_DIR [--out PNG] [--log]
"""

from __future__ import annotations

import argparse


def cmd_spectra(args) -> int:
    from ganscape.runs import RunDir
    from ganscape.training.spectra_picture import save_run_spectra

    path = save_run_spectra(RunDir.open(args.run_dir), args.out, log_scale=args.log)
    print(f"wrote {path}")
    return 0


def _add_spectra_parser(actions) -> None:
    spectra = actions.add_parser(
        "spectra", help="σ₀ of every weight of G and D over the steps (BigGAN's Figure 3)",
        description="The largest singular value of each weight layer of G and D (before spectral normalization) "
                    "over the steps, G and D side by side, as the run logged them with log.spectra_every=N.")
    spectra.add_argument("run_dir", metavar="RUN_DIR")
    spectra.add_argument("--out", metavar="PNG", help="the picture (default: RUN_DIR/spectra.png)")
    spectra.add_argument("--log", action="store_true", help="a logarithmic σ₀ axis")
    spectra.set_defaults(func=cmd_spectra)


def add_plot_parsers(commands: argparse._SubParsersAction) -> None:
    """Register ``ganscape plot spectra`` on the command's subparsers."""
    plot = commands.add_parser("plot", help="pictures of what a run logged: its singular values",
                               description="Pictures drawn from a run directory's metrics.jsonl.")
    actions = plot.add_subparsers(dest="plot_command", required=True, metavar="ACTION")
    _add_spectra_parser(actions)
