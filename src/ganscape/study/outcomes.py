"""What each group of a study ended with, as an ablation table reads it (BigGAN's Table 1): per group, the best and
the last evaluation of each reported value (``report_values``, else the objective), the step where its runs
collapsed (``collapse.*``: the first ``collapse/step`` of each run's log) and how many of its runs are amenable to
truncation (``truncation_sweep``: the verdicts the trials recorded). Values are means over the seeds of the group's
best trial, the trial that stands for the group in a study without search (``trials: 1``)."""

from __future__ import annotations

import math

import yaml

from ganscape.metrics import BETTER
from ganscape.study.spec import StudySpec

NEVER = "none"  # a run that watched for a collapse and saw none
TITLE = "Outcomes per group"


def reported_values(spec: StudySpec) -> tuple[str, ...]:
    """The log keys the table reports: the spec's ``report_values``, else its objective's metric."""
    return spec.report_values or (spec.objective.metric,)


def evaluations(rows: list[dict], key: str) -> list[float]:
    """The finite values of ``key`` in a run's metrics log, in step order."""
    return [float(row[key]) for row in rows if isinstance(row.get(key), (int, float)) and math.isfinite(row[key])]


def best_and_last(values: list[float], key: str) -> tuple[float, float]:
    """The best (as ``metrics.BETTER`` ranks the value; NaN when it does not) and the last of ``values``."""
    if not values:
        return math.nan, math.nan
    better = BETTER.get(key.rpartition("/")[2])
    best = min(values) if better == "min" else max(values) if better == "max" else math.nan
    return best, values[-1]


def _mean(values: list[float]) -> float:
    """The mean of the finite ``values`` (a seed without the value counts for nothing); NaN when none is."""
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def collapse_step(rows: list[dict]) -> int | None:
    """The step of the first collapse a run's log records (``collapse/step``); None when it records none."""
    return next((int(row["collapse/step"]) for row in rows if isinstance(row.get("collapse/step"), int)), None)


def watches_collapse(run_path) -> bool:
    """Whether the run's config watches a signal for a collapse (``collapse.signal`` set)."""
    try:
        config = yaml.safe_load((run_path / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return False
    return bool((config.get("collapse") or {}).get("signal"))


def amenability_count(verdicts: list) -> str:
    """"1/2" (amenable runs of those swept), with the undetermined ones named: "1/3 (1 undetermined)"."""
    undetermined = sum(v is None for v in verdicts)
    text = f"{sum(v is True for v in verdicts)}/{len(verdicts)}"
    return text + (f" ({undetermined} undetermined)" if undetermined else "")


def outcome_rows(runs_folder, spec: StudySpec, best_trials: dict[str, dict]) -> list[dict]:
    """One row per group, from the trial that stands for it (``best_trials``: label -> trial row): its trial,
    seeds, the best and last of each reported value (mean over the seeds), each seed's collapse step when its
    runs watch for one, and the amenable share when the spec sweeps truncation."""
    from ganscape.store.rundir import RunDir, read_metrics

    table = []
    for label, best in best_trials.items():
        paths = [runs_folder / name for name in best["run_dirs"]]
        logs = [read_metrics(RunDir(path)) for path in paths]  # [] for a run trained on another machine
        row = {"group": label, "trial": best["trial"], "seeds": len(paths)}
        for key in reported_values(spec):
            name = key.removeprefix("eval/")
            pairs = [best_and_last(evaluations(rows, key), key) for rows in logs]
            row[f"{name} best"] = _mean([b for b, _ in pairs])
            row[f"{name} last"] = _mean([last for _, last in pairs])
        if any(watches_collapse(path) for path in paths):
            steps = [collapse_step(rows) for rows in logs]
            row["collapse at step"] = ", ".join(NEVER if s is None else str(s) for s in steps)
        if spec.truncation_sweep:
            row["amenable"] = amenability_count(best.get("amenable") or [])
        table.append(row)
    return table
