"""``ganscape study``: create a study, run it on workers, follow it, report it.

    ganscape study create SPEC --out DIR [--storage postgresql://USER@HOST/DB]
    ganscape study run DIR [--workers N] [--devices cuda:0,cuda:1] [--trials K]
    ganscape study status DIR
    ganscape study report DIR
    ganscape study worker DIR [--device D]      (what 'run' starts; also to add a machine to a study)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path


def _folder(path: str):
    from ganscape.study.engine import StudyDir

    return StudyDir(Path(path))


def cmd_create(args) -> int:
    from ganscape.study.engine import create
    from ganscape.study.spec import load_spec

    spec = load_spec(args.spec)
    folder = create(spec, Path(args.out), args.storage)
    groups = len(spec.group_names())
    print(f"created study {spec.name} in {folder.path}: {groups} group(s) x {spec.trials} trial(s) x {spec.seeds} "
          f"seed(s), sampler {spec.sampler}, storage {args.storage}")
    print(f"run it with: ganscape study run {folder.path}")
    return 0


def _counts(studies) -> dict[str, int]:
    """Trials by state over every group."""
    from ganscape.study.engine import _optuna

    states = [t.state for _, study in studies for t in study.get_trials(deepcopy=False)]
    return {state.name: states.count(state) for state in _optuna().trial.TrialState}


def top_up(studies, spec, per_group: int) -> int:
    """Queue trials until every group has ``per_group`` besides its failed ones; returns how many were queued."""
    from ganscape.study.engine import enqueue

    added = 0
    for group, study in studies:
        have = sum(1 for t in study.get_trials(deepcopy=False) if t.state.name != "FAIL")
        if per_group > have:
            enqueue(study, spec, group, per_group - have)
            added += per_group - have
    return added


def cmd_run(args) -> int:
    from tqdm import tqdm

    from ganscape.study.report import write_report

    from ganscape.study.engine import load_studies

    folder = _folder(args.dir)
    spec, studies = load_studies(folder)
    if args.trials:
        added = top_up(studies, spec, args.trials)
        if added:
            print(f"queued {added} more trial(s)")
    devices = [d.strip() for d in args.devices.split(",")] if args.devices else ["cpu"] * args.workers
    workers = args.workers if not args.devices else len(devices)
    logs = folder.path / "logs"
    logs.mkdir(exist_ok=True)
    procs = []
    for i in range(workers):
        device = devices[i % len(devices)]
        log = open(logs / f"worker-{i}.log", "a")
        procs.append(subprocess.Popen([sys.executable, "-m", "ganscape", "study", "worker", str(folder.path),
                                       "--device", device, "--threads", str(args.threads)],
                                      stdout=log, stderr=subprocess.STDOUT))
    print(f"{workers} worker(s) on {', '.join(devices[:workers])}; logs in {logs} (pids "
          f"{', '.join(str(p.pid) for p in procs)})", flush=True)
    counts = _counts(studies)
    total = sum(counts.values()) - counts.get("FAIL", 0)
    tic = time.perf_counter()
    with tqdm(total=total, desc="trials", unit="trial", disable=not sys.stderr.isatty()) as bar:
        while any(p.poll() is None for p in procs):
            time.sleep(2)
            counts = _counts(studies)
            finished = counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
            bar.update(finished - bar.n)
    codes = [p.returncode for p in procs]
    counts = _counts(studies)
    print(f"{counts.get('COMPLETE', 0)} trial(s) complete, {counts.get('PRUNED', 0)} pruned, {counts.get('FAIL', 0)} "
          f"failed, {counts.get('WAITING', 0)} waiting, in {time.perf_counter() - tic:.0f} s")
    if any(codes):
        print(f"worker exit codes {codes}; see {logs}", file=sys.stderr)
    if counts.get("WAITING", 0) == 0 and counts.get("RUNNING", 0) == 0:
        print(f"report: {write_report(folder)}")
    return 0 if not any(codes) else 2


def cmd_worker(args) -> int:
    from ganscape.study.engine import worker

    done = worker(_folder(args.dir), args.device, args.threads, args.heartbeat, args.grace,
                  log=lambda message: print(f"[{time.strftime('%H:%M:%S')} pid {os.getpid()}] {message}", flush=True))
    print(f"worker {os.getpid()}: {done} trial(s) completed; nothing left to claim", flush=True)
    return 0


def cmd_status(args) -> int:
    import math

    from ganscape.study.report import gather, groups_of

    folder = _folder(args.dir)
    spec, rows, studies = gather(folder)
    counts = _counts(studies)
    print(f"study {spec.name} ({folder.path}): " + ", ".join(f"{n} {state.lower()}" for state, n in counts.items() if n))
    minimize = spec.objective.direction == "minimize"
    for label, trials in groups_of(rows, spec).items():
        finite = [t["value"] for t in trials if math.isfinite(t["value"])]
        best = f"{(min if minimize else max)(finite):.4g}" if finite else "n/a"
        print(f"  {label}: {len(trials)} complete, best {spec.objective.metric} {best}")
    for _, study in studies:
        for trial in study.get_trials(deepcopy=False):
            if trial.state.name == "RUNNING":
                worker = trial.user_attrs.get("worker", {})
                age = time.time() - trial.user_attrs.get("heartbeat", time.time())
                print(f"  running: {trial.user_attrs.get('group_label')}, trial {trial.number}, on "
                      f"{worker.get('host')} pid {worker.get('pid')}, heartbeat {age:.0f} s ago")
    return 0


def cmd_report(args) -> int:
    from ganscape.study.report import write_report

    print(f"wrote {write_report(_folder(args.dir))}")
    return 0


def add_study_parser(commands: argparse._SubParsersAction) -> None:
    study = commands.add_parser("study", help="hyperparameter studies (Optuna): create, run, status, report",
                                description="The GAN Landscape's studies: groups compared over a search space, "
                                            "several seeds, FID (or any logged metric) at checkpoints, and the "
                                            "budget analysis.")
    actions = study.add_subparsers(dest="study_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="make a study folder and queue its trials")
    create.add_argument("spec", metavar="SPEC", help="a study spec (YAML) or a built-in name, e.g. ring8_landscape")
    create.add_argument("--out", required=True, help="the study folder")
    create.add_argument("--storage", default="journal",
                        help="journal (a file in the study folder, for the workers of one machine; default) or a "
                             "PostgreSQL URL, postgresql://USER@HOST:PORT/DB, for workers on many machines")
    create.set_defaults(func=cmd_create)

    run = actions.add_parser("run", help="run a study's trials on worker processes, then write the report")
    run.add_argument("dir", metavar="DIR")
    run.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                     help="worker processes (default: one per core, %(default)s)")
    run.add_argument("--devices", help="comma-separated devices, one worker each (e.g. cuda:0,cuda:1)")
    run.add_argument("--trials", type=int, help="queue trials until every group has this many (failed ones aside)")
    run.add_argument("--threads", type=int, default=1, help="CPU threads per worker (default: %(default)s)")
    run.set_defaults(func=cmd_run)

    worker = actions.add_parser("worker", help="one worker: claim and run trials until none is left")
    worker.add_argument("dir", metavar="DIR")
    worker.add_argument("--device", default="cpu")
    worker.add_argument("--threads", type=int, default=1)
    worker.add_argument("--heartbeat", type=float, default=15.0, help="seconds between heartbeats")
    worker.add_argument("--grace", type=float, default=120.0,
                        help="seconds without a heartbeat after which a trial counts as lost")
    worker.set_defaults(func=cmd_worker)

    status = actions.add_parser("status", help="trials by state, each group's best, the running trials")
    status.add_argument("dir", metavar="DIR")
    status.set_defaults(func=cmd_status)

    report = actions.add_parser("report", help="write report/: CSV, Markdown and an HTML page of plots")
    report.add_argument("dir", metavar="DIR")
    report.set_defaults(func=cmd_report)
