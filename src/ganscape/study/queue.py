"""A study's queue of trials as its commands see it: counts by state, topping it up, the worker processes that
drain it (one study's, or a campaign's several). ``ganscape study run`` and ``status`` print what these return."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ganscape.study.engine import StudyDir, enqueue, load_studies
from ganscape.study.leases import _optuna, fail_stale_trials

MAX_RESTARTS = 3  # replacements per device before its worker counts as crashing for good
REAP_S = 0.5  # how often the supervisor looks for ended workers
PROGRESS_S = 2.0  # how often it counts the finished trials
STOP_S = 60.0  # how long an interrupted supervisor waits for each worker to give its trial back


def trial_counts(studies) -> dict[str, int]:
    """Trials by state over every group."""
    states = [t.state for _, study in studies for t in study.get_trials(deepcopy=False)]
    return {state.name: states.count(state) for state in _optuna().trial.TrialState}


def top_up(studies, spec, per_group: int) -> int:
    """Queue trials until every group has ``per_group`` besides its failed ones; returns how many were queued."""
    added = 0
    for group, study in studies:
        have = sum(1 for t in study.get_trials(deepcopy=False) if t.state.name != "FAIL")
        if per_group > have:
            enqueue(study, spec, group, per_group - have)
            added += per_group - have
    return added


def done_and_total(studies) -> tuple[int, int]:
    """(trials finished, trials the study will have finished): failed attempts aside, as their retries count."""
    counts = trial_counts(studies)
    return counts["COMPLETE"] + counts["PRUNED"], sum(counts.values()) - counts["FAIL"]


def start_worker(folders: list[Path], device: str, threads: int, log: Path) -> subprocess.Popen:
    """One ``ganscape study worker DIR [DIR ...]`` process on ``device``, appending to ``log`` (a replacement
    continues its predecessor's log)."""
    with open(log, "a") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "ganscape", "study", "worker", *map(str, folders),
                                 "--device", device, "--threads", str(threads)],
                                stdout=out, stderr=subprocess.STDOUT)


@dataclass
class SupervisedRun:
    """How a supervised run ended: ``completed`` when no trial of any folder waits or runs; every worker
    process's exit code in the order they ended; the replacements started; the devices whose worker kept
    crashing (given up after ``MAX_RESTARTS`` replacements)."""

    completed: bool
    exit_codes: list[int] = field(default_factory=list)
    restarts: int = 0
    gave_up: list[str] = field(default_factory=list)


def supervise(folders: list[Path], devices: list[str], threads: int, logs: Path, on_progress=None,
              max_restarts: int = MAX_RESTARTS) -> SupervisedRun:
    """Run one worker process per device over every folder's trials (``logs/worker-I.log``) until all are
    finished. A worker that ends with an error or a signal while trials remain is reaped at once: the trials
    it held are failed and queued again (to resume from their checkpoints) without waiting for the heartbeat
    grace, and a replacement starts on its device, at most ``max_restarts`` times per device.
    ``on_progress(done, total)`` is called whenever the count of finished trials changes."""
    paths = [Path(folder) for folder in folders]
    studies = [study for path in paths for study in load_studies(StudyDir(path))[1]]
    logs.mkdir(parents=True, exist_ok=True)
    procs = [start_worker(paths, device, threads, logs / f"worker-{i}.log") for i, device in enumerate(devices)]
    run, restarts = SupervisedRun(completed=False), [0] * len(devices)
    shown, counted = None, 0.0
    try:
        while any(proc is not None for proc in procs):
            for i, proc in enumerate(procs):
                if proc is None or proc.poll() is None:  # poll() reaps an ended worker
                    continue
                run.exit_codes.append(proc.returncode)
                procs[i] = None
                if proc.returncode != 0 and _requeue_lost(studies):
                    if restarts[i] < max_restarts:
                        restarts[i] += 1
                        procs[i] = start_worker(paths, devices[i], threads, logs / f"worker-{i}.log")
                    else:
                        run.gave_up.append(devices[i])
            if on_progress is not None and time.monotonic() - counted >= PROGRESS_S:
                counted, progress = time.monotonic(), done_and_total(studies)
                if progress != shown:
                    on_progress(*progress)
                    shown = progress
            time.sleep(REAP_S)
    except KeyboardInterrupt:  # Ctrl-C reached the workers too: let each give its trial back before leaving
        for proc in filter(None, procs):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=STOP_S)
        raise
    if on_progress is not None and (progress := done_and_total(studies)) != shown:
        on_progress(*progress)
    run.restarts, counts = sum(restarts), trial_counts(studies)
    run.completed = counts["WAITING"] == counts["RUNNING"] == 0
    return run


def _requeue_lost(studies) -> bool:
    """Fail and queue again the trials whose worker is gone (a reaped process counts as gone at once); True
    while any trial waits or runs."""
    for _, study in studies:
        fail_stale_trials(study)
    counts = trial_counts(studies)
    return counts["WAITING"] + counts["RUNNING"] > 0
