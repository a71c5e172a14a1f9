"""A study's queue of trials as its commands see it: counts by state, topping it up, the worker processes that
drain it. ``ganscape study run`` and ``status`` print what these return."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ganscape.study.engine import enqueue
from ganscape.study.leases import _optuna


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


def start_workers(folder: Path, devices: list[str], threads: int, logs: Path) -> list[subprocess.Popen]:
    """One ``ganscape study worker`` process per device, each writing to ``logs/worker-I.log``."""
    logs.mkdir(exist_ok=True)
    procs = []
    for i, device in enumerate(devices):
        log = open(logs / f"worker-{i}.log", "a")
        procs.append(subprocess.Popen([sys.executable, "-m", "ganscape", "study", "worker", str(folder),
                                       "--device", device, "--threads", str(threads)],
                                      stdout=log, stderr=subprocess.STDOUT))
    return procs
