"""``ganscape campaign``: several studies (data set x architecture x space) on the same workers, one report.

    ganscape campaign create SPEC --out DIR [--storage postgresql://USER@HOST/DB]
    ganscape campaign run DIR [--workers N] [--devices cuda:0,cuda:1] [--threads T]
    ganscape campaign status DIR
    ganscape campaign report DIR

The work is ``ganscape.campaign``'s (spec, engine, report); here are the options and the printing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def _folder(path: str):
    from ganscape.campaign.engine import CampaignDir

    return CampaignDir(Path(path))


def cmd_create(args) -> int:
    from ganscape.campaign.engine import create
    from ganscape.campaign.spec import load_campaign

    spec = load_campaign(args.spec)
    folder = create(spec, Path(args.out), args.storage)
    print(f"created campaign {spec.name} in {folder.path}, storage {args.storage}:")
    for cell in spec.cells:
        study = cell.spec
        print(f"  {cell.name} ({cell.data} x {cell.arch}): {len(study.group_names())} group(s) x {study.trials} "
              f"trial(s) x {study.seeds} seed(s), sampler {study.sampler}")
    print(f"run it with: ganscape campaign run {folder.path}")
    return 0


def cmd_run(args) -> int:
    from ganscape.campaign.engine import run
    from ganscape.campaign.report import write_report

    folder = _folder(args.dir)
    devices = [d.strip() for d in args.devices.split(",")] if args.devices else ["cpu"] * args.workers
    print(f"{len(devices)} worker(s) on {', '.join(devices)}; logs in {folder.logs}", flush=True)
    tic = time.perf_counter()

    def progress(done: int, total: int) -> None:
        print(f"trials done: {done}/{total} after {time.perf_counter() - tic:.0f} s", flush=True)

    outcome = run(folder, devices, args.threads, progress)
    print(f"workers finished in {time.perf_counter() - tic:.0f} s; {outcome.restarts} replaced"
          + (f"; gave up on {', '.join(outcome.gave_up)} (its worker kept crashing)" if outcome.gave_up else ""))
    if not outcome.completed:
        print(f"trials remain; see {folder.logs}, then run it again: ganscape campaign run {folder.path}",
              file=sys.stderr)
        return 2
    print(f"report: {write_report(folder)}")
    return 0


def cmd_status(args) -> int:
    from ganscape.campaign.engine import status

    folder = _folder(args.dir)
    for cell in status(folder):
        counts = ", ".join(f"{n} {state.lower()}" for state, n in cell.counts.items() if n) or "no trials"
        best = "n/a" if cell.best is None else f"{cell.best['value']:.4g} ({cell.best['group']}, trial " \
                                               f"{cell.best['trial']})"
        print(f"{cell.cell.name} ({cell.cell.data} x {cell.cell.arch}): {counts}; best {cell.spec.objective.metric} "
              f"{best}")
    print(f"details of one study: ganscape study status {folder.path / 'studies' / 'CELL'}")
    return 0


def cmd_report(args) -> int:
    from ganscape.campaign.report import write_report

    print(f"wrote {write_report(_folder(args.dir))}")
    return 0


def add_campaign_parser(commands: argparse._SubParsersAction) -> None:
    campaign = commands.add_parser("campaign", help="several studies on the same workers, one report: create, run, "
                                                    "status, report",
                                   description="A campaign runs several studies (each a data set x architecture x "
                                               "search space, with its own preset and protocol) on one set of "
                                               "workers and writes one report over them, as the GAN Landscape "
                                               "did. Built in: landscape (paper scale, GPU) and landscape_cpu "
                                               "(embedded data, about 20 minutes on 2 CPU cores).")
    actions = campaign.add_subparsers(dest="campaign_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="make a campaign folder: one study folder per cell, trials queued")
    create.add_argument("spec", metavar="SPEC", help="a campaign spec (YAML) or a built-in name, e.g. landscape_cpu")
    create.add_argument("--out", required=True, help="the campaign folder")
    create.add_argument("--storage", default="journal",
                        help="journal (a file in each study folder, for the workers of one machine; default) or a "
                             "PostgreSQL URL, postgresql://USER@HOST:PORT/DB, for workers on many machines")
    create.set_defaults(func=cmd_create)

    run = actions.add_parser("run", help="run every study's trials on worker processes, then write the report")
    run.add_argument("dir", metavar="DIR")
    run.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                     help="worker processes (default: one per core, %(default)s)")
    run.add_argument("--devices", help="comma-separated devices, one worker each (e.g. cuda:0,cuda:1)")
    run.add_argument("--threads", type=int, default=1, help="CPU threads per worker (default: %(default)s)")
    run.set_defaults(func=cmd_run)

    status = actions.add_parser("status", help="per study: trials by state and the best trial")
    status.add_argument("dir", metavar="DIR", help="the campaign folder")
    status.set_defaults(func=cmd_status)

    report = actions.add_parser(
        "report", help="write report/: one HTML page and summary.md over every study",
        description="Write DIR/report/: index.html (the best trial of every study, then per data set x "
                    "architecture each study's table, score distributions per group, the top 5%%, budget curves "
                    "and best samples, every image embedded), summary.md (the tables) and each study's plots "
                    "in report/<study>/.")
    report.add_argument("dir", metavar="DIR", help="the campaign folder")
    report.set_defaults(func=cmd_report)
