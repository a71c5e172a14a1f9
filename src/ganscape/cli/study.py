"""``ganscape study``: create a study, run it on workers, follow it, report it.

    ganscape study create SPEC --out DIR [--storage postgresql://USER@HOST/DB]
    ganscape study run DIR [--workers N] [--devices cuda:0,cuda:1] [--trials K]
    ganscape study status DIR
    ganscape study report DIR
    ganscape study best DIR [--group G] --out FILE   (the best trial's config as a preset)
    ganscape study export DIR [--group G] --out FOLDER   (the best trial's best checkpoint as a model)
    ganscape study worker DIR [DIR ...] [--device D]   (what 'run' starts; also to add a machine to a study)
    ganscape study dashboard DIR [--host H] [--port P]  (optuna-dashboard on the study's storage)

The work is ``ganscape.study``'s (engine, queue, report, best); here are the options and the printing.
"""

from __future__ import annotations

import argparse
import os
import shutil
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


class ProgressLines:
    """Shows the trials done out of all and an estimate of the time left, from ``supervise``'s progress calls: a
    bar on a terminal, otherwise a line per finished trial (for logs)."""

    def __init__(self, done: int, total: int):
        from tqdm import tqdm

        self.done, self.start, self.tic = done, done, time.perf_counter()
        self.bar = tqdm(total=total, initial=done, desc="trials", unit="trial", disable=not sys.stderr.isatty())

    def __call__(self, done: int, total: int) -> None:
        self.bar.total = total
        self.bar.update(done - self.done)
        if self.bar.disable:
            for n in range(self.done + 1, done + 1):
                per_trial = (time.perf_counter() - self.tic) / (n - self.start)  # seconds, in this session
                print(f"trials done: {n}/{total}, about {_duration(per_trial * (total - n))} left", flush=True)
        self.done = done

    def close(self) -> None:
        self.bar.close()


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def cmd_run(args) -> int:
    from ganscape.study.engine import load_studies
    from ganscape.study.queue import MAX_RESTARTS, done_and_total, supervise, top_up, trial_counts
    from ganscape.study.report import write_report

    folder = _folder(args.dir)
    spec, studies = load_studies(folder)
    if args.trials:
        added = top_up(studies, spec, args.trials)
        if added:
            print(f"queued {added} more trial(s)")
    devices = [d.strip() for d in args.devices.split(",")] if args.devices else ["cpu"] * args.workers
    workers = args.workers if not args.devices else len(devices)
    logs = folder.path / "logs"
    print(f"{workers} worker(s) on {', '.join(devices[:workers])}; logs in {logs}", flush=True)
    tic = time.perf_counter()
    progress = ProgressLines(*done_and_total(studies))
    try:
        run = supervise([folder.path], [devices[i % len(devices)] for i in range(workers)], args.threads, logs,
                        on_progress=progress)
    finally:
        progress.close()
    counts = trial_counts(studies)
    print(f"{counts.get('COMPLETE', 0)} trial(s) complete, {counts.get('PRUNED', 0)} pruned, {counts.get('FAIL', 0)} "
          f"failed, {counts.get('WAITING', 0)} waiting, in {time.perf_counter() - tic:.0f} s")
    if any(run.exit_codes):
        print(f"worker exit codes {run.exit_codes}, {run.restarts} worker(s) replaced; see {logs}")
    if run.gave_up:
        print(f"the worker on {', '.join(run.gave_up)} kept crashing ({MAX_RESTARTS} replacements); see {logs}",
              file=sys.stderr)
    if not run.completed:
        print(f"trials remain unfinished; run 'ganscape study run {folder.path}' again", file=sys.stderr)
        return 2
    print(f"report: {write_report(folder)}")
    return 0 if not run.gave_up else 2


def cmd_worker(args) -> int:
    from ganscape.study.engine import worker

    done = worker([_folder(d) for d in args.dir], args.device, args.threads, args.heartbeat, args.grace,
                  log=lambda message: print(f"[{time.strftime('%H:%M:%S')} pid {os.getpid()}] {message}", flush=True))
    print(f"worker {os.getpid()}: {done} trial(s) completed; nothing left to claim", flush=True)
    return 0


def dashboard_command(folder, host: str, port: int) -> list[str]:
    """The ``optuna-dashboard`` command line for the study's storage: its journal file, or its database URL.
    Raises ConfigError when optuna-dashboard is not installed."""
    from ganscape.errors import ConfigError

    executable = shutil.which("optuna-dashboard")
    if executable is None:
        raise ConfigError("optuna-dashboard is not installed (it is optional): pip install 'ganscape[dashboard]'.")
    url = folder.read()[1]
    storage = str((folder.path / "study.journal").resolve()) if url == "journal" else url
    return [executable, storage, "--host", host, "--port", str(port)]


def cmd_dashboard(args) -> int:
    command = dashboard_command(_folder(args.dir), args.host, args.port)
    print(f"optuna-dashboard on http://{args.host}:{args.port}/ (one Optuna study per group; Ctrl-C stops it)",
          flush=True)
    return subprocess.call(command)


def cmd_status(args) -> int:
    from ganscape.study.leases import last_beat, lost_worker
    from ganscape.study.queue import trial_counts
    from ganscape.study.report import best_of, gather, groups_of

    folder = _folder(args.dir)
    spec, rows, studies = gather(folder)
    running = [(trial, lost_worker(trial)) for _, study in studies
               for trial in study.get_trials(deepcopy=False) if trial.state.name == "RUNNING"]
    counts = trial_counts(studies) | {"DEAD": sum(1 for _, dead in running if dead)}
    counts["RUNNING"] -= counts["DEAD"]
    print(f"study {spec.name} ({folder.path}): "
          + ", ".join(f"{n} {state.lower()}" for state, n in counts.items() if n))
    for label, trials in groups_of(rows, spec).items():
        best = best_of(trials, spec)
        print(f"  {label}: {len(trials)} complete, best {spec.objective.metric} "
              f"{'n/a' if best is None else format(best['value'], '.4g')}")
    for trial, dead in running:
        worker = trial.user_attrs.get("worker", {})
        where = (f"{trial.user_attrs.get('group_label')}, trial {trial.number}, on {worker.get('host')} pid "
                 f"{worker.get('pid')}")
        if dead:
            print(f"  dead: {where} ({dead}); the next worker queues it again, to resume from its last checkpoint: "
                  f"ganscape study run {folder.path}")
        else:
            print(f"  running: {where}, heartbeat {time.time() - last_beat(trial):.0f} s ago")
    return 0


def cmd_best(args) -> int:
    """Write the config of the best trial (of a group, or of all) as a preset for new runs."""
    from ganscape.study.best import write_best_preset

    best = write_best_preset(_folder(args.dir), Path(args.out), args.group)
    over = "" if args.group is not None else f" (best of {best.groups} group(s))"
    print(f"best trial: {best.group}, trial {best.trial}, {best.score}{over}; its config is in {args.out}")
    print(f"train it with: ganscape train {args.out}")
    return 0


def cmd_export(args) -> int:
    """Export the generator of the best trial's best checkpoint (of a group, or of all) as a model folder."""
    from ganscape.study.best import export_best

    chosen = export_best(_folder(args.dir), Path(args.out), args.group)
    best = chosen.trial
    which = "its best evaluation" if chosen.of_best_evaluation else "its newest checkpoint (the best was not kept)"
    over = "" if args.group is not None else f" (best of {best.groups} group(s))"
    print(f"best trial: {best.group}, trial {best.trial}, {best.score}{over}")
    print(f"exported {best.run} at step {chosen.step}, {which}, to {args.out}")
    return 0


def cmd_report(args) -> int:
    from ganscape.study.report import write_report

    print(f"wrote {write_report(_folder(args.dir))}")
    return 0


def add_study_parser(commands: argparse._SubParsersAction) -> None:
    study = commands.add_parser("study",
                                help="hyperparameter studies (Optuna): create, run, status, report, best, dashboard",
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

    worker = actions.add_parser("worker", help="one worker: claim and run trials until none is left",
                                description="Claim and run the trials of one study folder or several (a "
                                            "campaign's), taking every folder's groups in turn, until none is left.")
    worker.add_argument("dir", metavar="DIR", nargs="+", help="study folder(s)")
    worker.add_argument("--device", default="cpu")
    worker.add_argument("--threads", type=int, default=1)
    worker.add_argument("--heartbeat", type=float, default=15.0, help="seconds between heartbeats")
    worker.add_argument("--grace", type=float, default=120.0,
                        help="seconds without a heartbeat after which a trial counts as lost")
    worker.set_defaults(func=cmd_worker)

    status = actions.add_parser(
        "status", help="trials by state, each group's best, the running trials",
        description="Count a study's trials by state, print each group's completed trials and best objective, and "
                    "list the running trials with their worker and heartbeat; a trial whose worker process is gone "
                    "(on this machine) or silent for over two minutes shows as dead: the next worker queues it "
                    "again, to resume from its last checkpoint.")
    status.add_argument("dir", metavar="DIR", help="the study folder")
    status.set_defaults(func=cmd_status)

    report = actions.add_parser(
        "report", help="write report/: CSV, Markdown and an HTML page of plots",
        description="Write DIR/report/: trials.csv (every trial), summary.md (per group: best, median, top 5%, the "
                    "expected best of k trials), the budget curves against trials and against compute (every "
                    "attempt of a trial counted), score and importance plots, each group's best samples, and "
                    "index.html with everything embedded.")
    report.add_argument("dir", metavar="DIR", help="the study folder")
    report.set_defaults(func=cmd_report)

    dashboard = actions.add_parser(
        "dashboard", help="start optuna-dashboard on the study's storage",
        description="Start optuna-dashboard (pip install 'ganscape[dashboard]') on the study's storage, its "
                    "journal file or its PostgreSQL database: one Optuna study per group, live.")
    dashboard.add_argument("dir", metavar="DIR", help="the study folder")
    dashboard.add_argument("--host", default="127.0.0.1", help="the address to serve on (default: %(default)s)")
    dashboard.add_argument("--port", type=int, default=8080, help="the port to serve on (default: %(default)s)")
    dashboard.set_defaults(func=cmd_dashboard)

    best = actions.add_parser(
        "best", help="write the best trial's config as a preset for 'ganscape train'",
        description="Write the config of the study's best completed trial (over all groups, or of --group) to "
                    "--out: its run's resolved config without run.* (the run's place), so 'ganscape train FILE' "
                    "starts a new run with the same settings.")
    best.add_argument("dir", metavar="DIR", help="the study folder")
    best.add_argument("--group", metavar="G",
                      help="a group as 'ganscape study status' names it (e.g. 'loss=ns, penalty=none') or as its "
                           "runs' folder (loss=ns-penalty=none)")
    best.add_argument("--out", required=True, metavar="FILE", help="the preset to write (YAML)")
    best.set_defaults(func=cmd_best)

    export = actions.add_parser(
        "export", help="export the best trial's best checkpoint as a model folder",
        description="Export the generator of the study's best completed trial (over all groups, or of --group) "
                    "as a model folder, as 'ganscape export' does: its first seed's run at the checkpoint of its "
                    "best evaluation, which every trial keeps (or its newest, where the objective is the last "
                    "evaluation). Load it with ganscape.load_generator or 'ganscape sample'.")
    export.add_argument("dir", metavar="DIR", help="the study folder")
    export.add_argument("--group", metavar="G",
                        help="a group as 'ganscape study status' names it (e.g. 'loss=ns, penalty=none') or as its "
                             "runs' folder (loss=ns-penalty=none)")
    export.add_argument("--out", required=True, metavar="FOLDER", help="the model folder to write")
    export.set_defaults(func=cmd_export)
