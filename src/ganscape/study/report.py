"""A study's report: tables (CSV, Markdown) and a self-contained HTML page of plots.

    report/trials.csv     one row per trial: group, parameters, objective per seed and mean, how it failed
                          (diverged, pruned), wall time of the attempt and compute of every attempt of the
                          trial, the work its runs did (D and G updates, GFLOPs) and each seed's best step
    report/summary.md     per group: trials, diverged, pruned, best, median, mean of the top 5%, expected best
                          of k; what failed trials scored, and why a plot is left out
    report/index.html     the tables, those notes and the plots, images embedded (one file to send or open anywhere)
    report/*.png          the plots: budget curves against trials, work and wall time, the top 5% per group,
                          every trial's score per group, parameter importances, each group's best samples;
                          where the runs log ``log.convergence``, whether each group settles (``study.settling``:
                          settling.png and a table); with ``report_values`` or ``truncation_sweep`` in the spec,
                          each group's outcomes (``study.outcomes``: reported values best and last, collapse step,
                          amenable runs)

Failed trials, diverged (an infinite objective, or a run that diverged) or pruned, are counted per group
apart. By default (objective ``failed: worst``, the GAN Landscape's protocol) they score the worst value:
the objective's ``worst`` when the spec gives one, else the metric's bound (``KNOWN_WORST``), else the
worst finite score observed in the whole study. With ``failed: exclude`` they are left out of the scores.

Budget curves: for samplers whose trials are independent draws (random, Sobol, grid), the exact expected
best of k trials (``budget.expected_best``) with a bootstrap band; for sequential samplers (TPE, GP), the
best score so far in trial order, with a band over the seeds (``budget.best_so_far_band``). Their compute
axis is the work the trials' runs did (GFLOPs of the training updates, else D plus G updates), with wall
time in a second figure.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ganscape.errors import ConfigWarning
from ganscape.plots import count_axis
from ganscape.study.budget import best_so_far_band, expected_best, expected_best_curve
from ganscape.study.engine import StudyDir, _optuna, group_label, load_studies
from ganscape.study.leases import last_beat
from ganscape.study.settling import TITLE as SETTLING, settling_section
from ganscape.study.outcomes import TITLE as OUTCOMES, outcome_rows
from ganscape.study.spec import StudySpec

TOP_FRACTION = 0.05
# The worst value of the reported metrics that have one: what a failed trial scores unless the spec says.
KNOWN_WORST = {
    "js_to_target": (math.log(2), "ln 2, the Jensen-Shannon divergence's maximum (nats)"),
    "high_quality_pct": (0.0, "0%, no sample of high quality"),
    "modes_covered": (0.0, "no mode covered"),
    "precision": (0.0, "0, no generated sample on the real manifold"),
    "recall": (0.0, "0, no real sample on the generated manifold"),
    "is_mean": (1.0, "1, the Inception Score's minimum"),
}
SEQUENTIAL = ("tpe", "gp")  # samplers that choose each trial from the ones before: their trials are not resampled
SCORED = ("COMPLETE", "PRUNED")  # the trials that have a score (a pruned one the failed score)
SMALL_MULTIPLES = 8  # more groups than this: one small plot per group instead of one crowded axis
LEGEND_SIZE, TICK_SIZE = 9, 8  # font sizes (points), legible at the page's width
MIN_IMPORTANCE_TRIALS = 10  # and more than twice the group's searched parameters


def attempt_seconds(trial) -> float:
    """The compute of one attempt of a trial: its runs' wall times when it finished them; otherwise (killed,
    interrupted, lost, pruned, still running) from its claim to its worker's last heartbeat."""
    if "wall_s" in trial.user_attrs:
        return float(sum(trial.user_attrs["wall_s"]))
    if trial.datetime_start is None:  # still waiting
        return 0.0
    return max(0.0, last_beat(trial) - trial.datetime_start.timestamp())


def failure(state: str, value: float, diverged: bool) -> str:
    """How a trial failed: "pruned", "diverged" (a run diverged, or the objective is infinite) or "" (it did not)."""
    if state == "PRUNED":
        return "pruned"
    return "diverged" if state == "COMPLETE" and (diverged or not math.isfinite(value)) else ""


def trial_work(attrs: dict) -> dict:
    """The work of a trial's runs summed over its seeds (user_attrs "work", one entry per seed): G and D
    updates, and GFLOPs when every seed counted them; NaN when a seed's work is unknown (an entry of None)."""
    work = attrs.get("work") or []
    known = bool(work) and all(w is not None and w.get("d_updates") is not None for w in work)
    gflops = [w["gflops"] for w in work] if known else [None]
    g_updates = sum(int(w["g_updates"]) for w in work) if known else math.nan
    d_updates = sum(int(w["d_updates"]) for w in work) if known else math.nan
    return {"work_g_updates": g_updates, "work_d_updates": d_updates, "work_updates": g_updates + d_updates,
            "work_gflops": float(sum(gflops)) if None not in gflops else math.nan}


def gather(folder: StudyDir) -> tuple[StudySpec, list[dict], list[tuple[dict, object]]]:
    """(spec, one row per trial of every group, [(group, its Optuna study)]). A row's ``wall_s`` is its own
    attempt's compute; ``compute_s`` adds the attempts it retries (a killed attempt's time is spent too);
    ``order`` is the number of the trial's first attempt: a retry takes the place of the trial it retries."""
    optuna = _optuna()
    spec, studies = load_studies(folder)
    rows = []
    for _, study in studies:
        compute, first = {}, {}  # by trial number: compute of every attempt so far, number of the first attempt
        for trial in study.get_trials(deepcopy=False):
            attrs = trial.user_attrs
            wall = attempt_seconds(trial)
            compute[trial.number] = wall + compute.get(attrs.get("retry_of"), 0.0)
            first[trial.number] = first.get(attrs.get("retry_of"), trial.number)
            value = trial.value if trial.state == optuna.trial.TrialState.COMPLETE else math.nan
            diverged = bool(attrs.get("diverged", False))
            rows.append({"trial": trial.number, "order": first[trial.number], "state": trial.state.name,
                         "group": attrs.get("group_label", ""), "value": value,
                         "seed_values": attrs.get("seed_values", []), "wall_s": wall,
                         "compute_s": compute[trial.number], "diverged": diverged,
                         "failed": failure(trial.state.name, value, diverged), **trial_work(attrs),
                         "best_steps": attrs.get("best_steps", []), "retry_of": attrs.get("retry_of", ""),
                         "run_dirs": attrs.get("run_dirs", []), "amenable": attrs.get("amenable", []), **{f"param:{k}": v for k, v in trial.params.items()}})
    return spec, rows, studies


def groups_of(rows: list[dict], spec: StudySpec, states: tuple[str, ...] = ("COMPLETE",)) -> dict[str, list[dict]]:
    """Each group's trials in one of ``states``, in trial order (a retry where the trial it retries was)."""
    order = [group_label(g) for g in spec.group_names()]
    return {label: sorted((r for r in rows if r["group"] == label and r["state"] in states), key=lambda r: r["order"])
            for label in order}


def best_of(trials: list[dict], spec: StudySpec) -> dict | None:
    """The completed trial with the best finite objective, diverged ones aside (None when there is none)."""
    finite = [t for t in trials if math.isfinite(t["value"]) and not t["failed"]]
    if not finite:
        return None
    return (min if spec.objective.direction == "minimize" else max)(finite, key=lambda t: t["value"])


# ---------------------------------------------------------------- scores of failed trials


@dataclass(frozen=True)
class FailedScore:
    """What a failed (diverged or pruned) trial scores: ``value`` (NaN while no trial has a finite score),
    ``counted`` (objective failed: worst) or left out (failed: exclude), and ``why`` that value."""

    value: float
    counted: bool
    why: str

    def scores(self, trials: list[dict]) -> np.ndarray:
        """Each trial's score: its objective, or ``value`` for a failed one (NaN when failures are left out)."""
        failed = self.value if self.counted else math.nan
        return np.array([failed if t["failed"] else t["value"] for t in trials], dtype=np.float64)

    def seed_sequences(self, trials: list[dict], seeds: int) -> list[list[float]]:
        """Per seed, the trials' scores in order: each seed's own objective, a failed trial's score for every
        seed (the trial's score where its seeds were not recorded)."""
        scores = self.scores(trials)
        return [[float(t["seed_values"][s]) if not t["failed"] and len(t["seed_values"]) > s else float(score)
                 for t, score in zip(trials, scores)] for s in range(seeds)]

    def note(self) -> str:
        if not self.counted:
            return "Diverged and pruned trials are left out of the scores (objective failed: exclude)."
        return f"Diverged and pruned trials score {_fmt(self.value)}: {self.why}."


def failed_score(spec: StudySpec, rows: list[dict]) -> FailedScore:
    """The score of failed trials (see the module docstring), over every group's ``rows``."""
    objective = spec.objective
    counted = objective.failed == "worst"
    if objective.worst is not None:
        return FailedScore(objective.worst, counted, "the objective's worst value, given in the spec")
    name = objective.metric.rsplit("/", 1)[-1]
    if name in KNOWN_WORST:
        bound, words = KNOWN_WORST[name]
        return FailedScore(bound, counted, f"{words}, the bound of {name}")
    finite = [r for r in rows if r["state"] == "COMPLETE" and not r["failed"]]
    if not finite:
        return FailedScore(math.nan, counted, "no trial has a finite score yet")
    worst = (max if objective.direction == "minimize" else min)(finite, key=lambda r: r["value"])
    return FailedScore(worst["value"], counted, f"the worst score observed in the study ({worst['group']}, trial "
                                                f"{worst['trial']}); {name} has no known bound")


# ---------------------------------------------------------------- tables


def summary_rows(spec: StudySpec, groups: dict[str, list[dict]], failed: FailedScore) -> list[dict]:
    """Per group: its trials, how many diverged and were pruned, and statistics of its scores (failed trials
    scored as ``failed`` says)."""
    minimize = spec.objective.direction == "minimize"
    table = []
    for label, trials in groups.items():
        scores = failed.scores(trials)
        ranked = np.sort(scores[np.isfinite(scores)])
        ranked = ranked if minimize else ranked[::-1]
        top = ranked[:max(1, math.ceil(TOP_FRACTION * len(ranked)))]
        row = {"group": label, "trials": len(trials),
               "diverged": sum(t["failed"] == "diverged" for t in trials),
               "pruned": sum(t["failed"] == "pruned" for t in trials),
               "best": float(ranked[0]) if len(ranked) else math.nan,
               "median": float(np.median(ranked)) if len(ranked) else math.nan,
               "top_5pct_mean": float(top.mean()) if len(top) else math.nan}
        for k in (1, 5, 10):
            row[f"expected_best_of_{k}"] = expected_best(ranked, k, minimize) if len(ranked) else math.nan
        row["mean_compute_s"] = float(np.mean([t["compute_s"] for t in trials])) if trials else math.nan
        row["mean_gflops"] = float(np.mean([t["work_gflops"] for t in trials])) if trials else math.nan
        table.append(row)
    return table


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) and math.isfinite(value) else ("n/a" if isinstance(value, float)
                                                                                     else str(value))


def markdown_table(rows: list[dict]) -> str:
    columns = list(rows[0]) if rows else ["group"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(_fmt(row[c]) for c in columns) + " |" for row in rows]) + "\n"


def markdown(spec: StudySpec, table: list[dict], notes: list[str] = (), tables: dict[str, list[dict]] | None = None) \
        -> str:
    """summary.md: the groups' table, the notes, then each further titled table."""
    head = (f"# {spec.name}\n\nObjective: {spec.objective.reduce} {spec.objective.metric} over each run's "
            f"evaluations ({spec.objective.direction}), mean over {spec.seeds} seed(s) per trial; sampler "
            f"{spec.sampler}.\n\n")
    more = "".join(f"\n## {title}\n\n{markdown_table(rows)}" for title, rows in (tables or {}).items())
    return head + markdown_table(table) + "".join(f"\n{note}\n" for note in notes) + more


def write_trials_csv(path: Path, rows: list[dict]) -> None:
    params = sorted({k for r in rows for k in r if k.startswith("param:")})
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["trial", "state", "group", *params, "value", "seed_values", "failed", "diverged", "wall_s",
                         "compute_s", "work_g_updates", "work_d_updates", "work_gflops", "best_steps", "retry_of",
                         "run_dirs"])
        for r in rows:
            writer.writerow([r["trial"], r["state"], r["group"], *[r.get(p, "") for p in params], r["value"],
                             " ".join(f"{v:.6g}" for v in r["seed_values"]), r["failed"], r["diverged"],
                             f"{r['wall_s']:.2f}", f"{r['compute_s']:.2f}", _known(r["work_g_updates"], "d"),
                             _known(r["work_d_updates"], "d"), _known(r["work_gflops"], ".6g"),
                             " ".join("none" if s is None else str(s) for s in r["best_steps"]), r["retry_of"],
                             " ".join(r["run_dirs"])])


def _known(value: float, spec: str) -> str:
    """``value`` formatted with ``spec`` (a whole number for "d"), or an empty cell when it is unknown (NaN)."""
    if not math.isfinite(value):
        return ""
    return f"{int(value):d}" if spec == "d" else f"{value:{spec}}"


# ---------------------------------------------------------------- plots


@dataclass
class Plot:
    """A figure of the report, its title and the name of its file in report/."""

    file: str
    title: str
    figure: Figure


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _figure(width=7.0, height=4.5, layout: str | None = None) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def _panels(count: int, width: float, height: float) -> tuple[Figure, list]:
    """A figure and one axis for each of ``count`` groups: the same axis for all when they are few, one small
    axis each (small multiples, four a row) when there are more than SMALL_MULTIPLES."""
    if count <= SMALL_MULTIPLES:
        fig = _figure(width, height, "constrained")
        return fig, [fig.add_subplot()] * count
    columns = 4
    rows = math.ceil(count / columns)
    fig = _figure(10, 2.4 * rows + 1.0, "constrained")
    first = fig.add_subplot(rows, columns, 1)
    return fig, [first] + [fig.add_subplot(rows, columns, i + 1, sharex=first, sharey=first) for i in range(1, count)]


def _one_axis(panels: list) -> bool:
    """Whether ``_panels`` drew every group on the same axis (not small multiples)."""
    return len({id(ax) for ax in panels}) <= 1


def _palette(count: int) -> list:
    from matplotlib import colormaps

    return list(colormaps["tab10" if count <= 10 else "tab20"].colors)


def _finish(fig: Figure, axes: list, title: str, xlabel: str, ylabel: str) -> None:
    """Labels, legible tick labels, and a legend below a shared axis (small multiples carry titles instead)."""
    shared = _one_axis(axes)
    for ax in {id(ax): ax for ax in axes}.values():
        ax.tick_params(axis="both", which="both", labelsize=TICK_SIZE)
        if shared:
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
        if shared and ax.get_legend_handles_labels()[0]:
            fig.legend(*ax.get_legend_handles_labels(), fontsize=LEGEND_SIZE, loc="outside lower center", ncol=2)
    if axes and not shared:
        fig.supxlabel(xlabel, fontsize=LEGEND_SIZE)
        fig.supylabel(ylabel, fontsize=LEGEND_SIZE)
    fig.suptitle(title, fontsize=10, wrap=True)


@dataclass
class Curve:
    """A group's budget curve: the best score reachable with ``k`` trials (``mean``, band ``low`` to
    ``high``) and, by row key of the compute (``compute_s``, ``work_gflops``, ...), what those k trials cost."""

    k: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray
    cost: dict[str, np.ndarray] = field(default_factory=dict)


def budget_curve(trials: list[dict], failed: FailedScore, spec: StudySpec, cost_keys: tuple[str, ...]) -> Curve | None:
    """The expected best of k independent draws with a bootstrap band, costing k times the mean trial; or for
    a sequential sampler the best so far in trial order (mean and range over seeds), costing the trials so far.
    None when the group has no score."""
    minimize = spec.objective.direction == "minimize"
    costs = {key: np.array([t[key] for t in trials], dtype=np.float64) for key in cost_keys}
    if spec.sampler in SEQUENTIAL:
        if not trials:
            return None
        band = best_so_far_band(failed.seed_sequences(trials, spec.seeds), minimize)
        return Curve(np.array(band["k"]), *(np.array(band[q]) for q in ("mean", "low", "high")),
                     {key: np.cumsum(cost) for key, cost in costs.items()})
    scores = failed.scores(trials)
    scores = scores[np.isfinite(scores)]
    if not len(scores):
        return None
    ks = np.arange(1, max(2, len(scores)) + 1)
    band = expected_best_curve(scores, ks, minimize)
    return Curve(ks, *(np.array(band[q]) for q in ("mean", "low", "high")),
                 {key: ks * cost.mean() for key, cost in costs.items()})


def compute_axis(groups: dict[str, list[dict]]) -> tuple[str, str]:
    """(row key, axis words) of the primary compute axis: GFLOPs when every trial counted them, else D plus
    G updates when every trial recorded them, else wall time."""
    trials = [t for group in groups.values() for t in group]
    if trials and all(math.isfinite(t["work_gflops"]) for t in trials):
        return "work_gflops", "GFLOPs of the training updates of k trials"
    if trials and all(math.isfinite(t["work_updates"]) for t in trials):
        return "work_updates", "D and G updates of k trials (no FLOP count was recorded)"
    return "compute_s", "wall time"


def budget_figures(spec: StudySpec, groups: dict[str, list[dict]], failed: FailedScore) -> list[Plot]:
    """Budget curves against trials, against the work done, and against wall time (every attempt of a trial,
    failed trials included: they cost compute too). Wall time is the second view unless no work was recorded."""
    work_key, work_words = compute_axis(groups)
    cost_keys = tuple(dict.fromkeys((work_key, "compute_s")))
    curves = {label: budget_curve(trials, failed, spec, cost_keys) for label, trials in groups.items()}
    curves = {label: curve for label, curve in curves.items() if curve is not None}
    seconds = [curve.cost["compute_s"][-1] for curve in curves.values()]
    unit, per = ("hours", 3600) if seconds and max(seconds) > 3600 else ("minutes", 60)
    wall_words = f"wall time of k trials ({unit} of one worker, every attempt of a trial)"
    if spec.sampler in SEQUENTIAL:
        what, band = "Best score so far", "mean over seeds, band from the lowest to the highest seed"
        ylabel = f"best {spec.objective.metric} so far"
    else:
        what, band = "Expected best score", "mean, 95% bootstrap band"
        ylabel = f"expected best {spec.objective.metric}"
    axes = [("budget_trials.png", "the number of trials", "trials k", lambda c: c.k)]
    if work_key != "compute_s":
        axes.append(("budget_compute.png", "the work done", work_words, lambda c: c.cost[work_key]))
    axes.append(("budget_wall.png" if work_key != "compute_s" else "budget_compute.png", "wall time", wall_words,
                 lambda c: c.cost["compute_s"] / per))
    plots = []
    for file, against, xlabel, x_of in axes:
        fig, panels = _panels(len(curves), 7, 5.5)
        palette = _palette(len(curves))
        for index, ((label, curve), ax) in enumerate(zip(curves.items(), panels)):
            color = palette[index % len(palette)]
            ax.plot(x_of(curve), curve.mean, color=color, label=label, marker=".")
            ax.fill_between(x_of(curve), curve.low, curve.high, color=color, alpha=0.12)
            if not _one_axis(panels):
                ax.set_title(label, fontsize=TICK_SIZE)
            ax.set_xscale("log")
        for ax in panels:
            if file == "budget_trials.png":
                count_axis(ax.xaxis)
            else:
                _plain_log_axis(ax.xaxis)
        _finish(fig, panels, f"{what} against {against} ({band})", xlabel, ylabel)
        plots.append(Plot(file, f"{what} against {against}", fig))
    return plots


def _plain_log_axis(axis) -> None:
    """Plain numbers (0.5, 2, 30, 1000) on a log axis instead of powers of ten, at 1, 2 and 5 times each power
    of ten (no crowding however many decades the axis spans)."""
    from matplotlib.ticker import FuncFormatter

    def plain(x: float, _) -> str:
        mantissa = round(x / 10 ** math.floor(math.log10(x)), 6) if x > 0 else 0
        return f"{x:g}" if mantissa in (1, 2, 5) else ""

    axis.set_major_formatter(FuncFormatter(plain))
    axis.set_minor_formatter(FuncFormatter(plain))


def distribution_figures(spec: StudySpec, groups: dict[str, list[dict]], failed: FailedScore) -> list[Plot]:
    """Box plots of each group's top 5% of trials, and of every trial's score per group (failed ones, at
    their score, marked with a red x)."""
    minimize = spec.objective.direction == "minimize"
    labels = list(groups)
    tops, alls, fails = [], [], []
    for label in labels:
        scores = failed.scores(groups[label])
        fails.append(scores[[bool(t["failed"]) for t in groups[label]]] if len(scores) else scores)
        scores = np.sort(scores[np.isfinite(scores)])
        scores = scores if minimize else scores[::-1]
        tops.append(scores[:max(1, math.ceil(TOP_FRACTION * len(scores)))])
        alls.append(scores)
    plots = []
    for file, title, data in (("top5.png", "The top 5% of trials per group", tops),
                              ("scores.png", "Every trial's score per group", alls)):
        fig = _figure(7, 0.35 * len(labels) + 1.5)
        ax = fig.add_subplot()
        positions = np.arange(len(labels))
        ax.boxplot([d if len(d) else [math.nan] for d in data], positions=positions, orientation="horizontal",
                   widths=0.6)
        jitter = np.random.default_rng(0)
        for y, d in zip(positions, data):
            ax.scatter(d, np.full(len(d), y) + jitter.uniform(-0.15, 0.15, len(d)), s=8, alpha=0.6)
        if file == "scores.png" and failed.counted:
            for y, d in zip(positions, fails):
                ax.scatter(d, np.full(len(d), y), s=30, marker="x", color="tab:red",
                           label="diverged or pruned" if y == 0 or not ax.get_legend_handles_labels()[0] else None)
        ax.set_yticks(positions, labels)
        ax.tick_params(axis="both", labelsize=TICK_SIZE)
        ax.set_xlabel(spec.objective.metric)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=LEGEND_SIZE, loc="best")
        ax.set_title(f"{title[0].lower()}{title[1:]}", fontsize=10, wrap=True)
        fig.tight_layout()
        plots.append(Plot(file, title, fig))
    return plots


def importance_trials(spec: StudySpec, group: dict) -> int:
    """How many completed trials a group needs for its parameter importances to mean something."""
    return max(MIN_IMPORTANCE_TRIALS, 2 * len(spec.params_for(group)) + 1)


def importance_figure(spec: StudySpec, studies: list[tuple[dict, object]], failed: FailedScore) \
        -> tuple[Plot | None, str]:
    """Optuna's parameter importances over each group's completed trials (failed ones at the failed score),
    when every group that searches parameters has enough of them; else (None, why not, in words)."""
    optuna = _optuna()
    searched = [(group, study) for group, study in studies if spec.params_for(group)]
    if not searched:
        return None, "Parameter importances are not shown: no parameter is searched."
    if not math.isfinite(failed.value):
        return None, "Parameter importances are not shown: no trial has a finite score yet."
    complete = {group_label(group): len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
                for group, study in searched}
    short = [f"{group_label(group)} has {complete[group_label(group)]} of {importance_trials(spec, group)}"
             for group, study in searched if complete[group_label(group)] < importance_trials(spec, group)]
    if short:
        return None, (f"Parameter importances are not shown: each group needs at least {MIN_IMPORTANCE_TRIALS} "
                      "completed trials and more than twice as many as the parameters it searches ("
                      + "; ".join(short) + ").")

    def score(trial) -> float:
        return failed.value if trial.user_attrs.get("diverged") or not math.isfinite(trial.value) else trial.value

    importances = {}
    for group, study in searched:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna's note that few trials give equal importances
                importances[group_label(group)] = optuna.importance.get_param_importances(study, target=score)
        except (RuntimeError, ValueError):  # parameters that never varied
            continue
    importances = {label: values for label, values in importances.items() if values}
    if not importances:
        return None, "Parameter importances are not shown: the searched parameters never varied."
    names = sorted({name for values in importances.values() for name in values})
    fig, panels = _panels(len(importances), 7, 0.25 * len(names) * len(importances) + 1.5)
    shared = _one_axis(panels)
    height = 0.8 / len(importances) if shared else 0.8
    palette = _palette(len(importances))
    for j, ((label, values), ax) in enumerate(zip(importances.items(), panels)):
        offset = j * height if shared else 0.0
        ax.barh(np.arange(len(names)) + offset, [values.get(n, 0.0) for n in names], height=height, label=label,
                color=palette[j % len(palette)])
        ax.set_yticks(np.arange(len(names)) + (0.4 - height / 2 if shared else 0.0), names)
        if not shared:
            ax.set_title(label, fontsize=TICK_SIZE)
    _finish(fig, panels, "Parameter importances per group", "importance (Optuna's PED-ANOVA)", "parameter")
    return Plot("importances.png", "Parameter importances", fig), ""


def best_samples(folder: StudyDir, spec: StudySpec, groups: dict[str, list[dict]]) -> dict[str, bytes]:
    """A picture of the samples of each group's best trial, from its first seed's checkpoint of its best
    evaluation (the newest where the run kept none), keyed "GROUP: trial N, step S"."""
    from PIL import Image

    from ganscape.hub import run_model
    from ganscape.plots import sample_picture
    from ganscape.runs import RunDir
    from ganscape.study.engine import best_checkpoint_step
    from ganscape.training.sampling import points_picture

    pictures = {}
    for label, trials in groups.items():
        best = best_of([t for t in trials if t["run_dirs"]], spec)
        if best is None:
            continue
        run = RunDir(folder.runs / best["run_dirs"][0])
        if not run.path.is_dir():
            continue  # trained on another machine
        model = run_model(run, best_checkpoint_step(run, spec))[0]
        caption = f"{label}: trial {best['trial']}, step {model.config['provenance']['step']}"
        if len(model.spec.shape) == 3:
            rgb = sample_picture(model.sample(16, seed=0), columns=8)
        else:
            rgb = points_picture(model.sample(1000, seed=0), model.config, caption)
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="png")
        pictures[caption] = buffer.getvalue()
    return pictures


# ---------------------------------------------------------------- learning curves


@dataclass
class LearningCurves:
    """One group's objective over training: the trial it comes from (the group's best) and, for each of its
    seeds' runs, the steps of its evaluations and the objective's values there (``objective_evaluations``)."""

    trial: int
    runs: list[tuple[np.ndarray, np.ndarray]]


def learning_curves(folder: StudyDir, spec: StudySpec, groups: dict[str, list[dict]]) -> dict[str, LearningCurves]:
    """Each group's best trial's evaluations over training, read from its seeds' metrics logs. The best trial
    stands for the group (in a study without search, trials: 1, it is the group's only one); groups without a
    finite trial, and runs trained on another machine (no run directory here), are left out."""
    from ganscape.store.rundir import RunDir, read_metrics
    from ganscape.study.engine import objective_evaluations

    curves = {}
    for label, trials in groups.items():
        best = best_of([t for t in trials if t["run_dirs"]], spec)
        if best is None:
            continue
        runs = []
        for name in best["run_dirs"]:
            evaluations = objective_evaluations(read_metrics(RunDir(folder.runs / name)), spec)  # [] when absent
            if evaluations:
                steps, values = zip(*evaluations)
                runs.append((np.array(steps), np.array(values, dtype=np.float64)))
        if runs:
            curves[label] = LearningCurves(best["trial"], runs)
    return curves


def _spread(values: list[float]) -> float:
    """The sample standard deviation (n - 1) of the seeds' values; NaN for a single seed."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


def final_values(spec: StudySpec, curves: dict[str, LearningCurves]) -> list[dict]:
    """Per group: its trial, the number of seeds, the step of the last evaluation (a range when the seeds
    stopped at different steps), and the mean and sample std over the seeds of each seed's last and best
    evaluation."""
    pick = min if spec.objective.direction == "minimize" else max
    table = []
    for label, curve in curves.items():
        last = [float(values[-1]) for _, values in curve.runs]
        best = [float(pick(values)) for _, values in curve.runs]
        stops = sorted({int(steps[-1]) for steps, _ in curve.runs})
        table.append({"group": label, "trial": curve.trial, "seeds": len(curve.runs),
                      "last_step": str(stops[0]) if len(stops) == 1 else f"{stops[0]}-{stops[-1]}",
                      "last_mean": float(np.mean(last)), "last_std": _spread(last),
                      "best_mean": float(np.mean(best)), "best_std": _spread(best)})
    return table


def seed_band(curve: LearningCurves) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(steps, mean, lowest, highest) over the seeds at the steps every seed evaluated."""
    steps = curve.runs[0][0]
    for other, _ in curve.runs[1:]:
        steps = np.intersect1d(steps, other)
    values = np.array([run_values[np.isin(run_steps, steps)] for run_steps, run_values in curve.runs])
    return steps, values.mean(axis=0), values.min(axis=0), values.max(axis=0)


def learning_curves_figure(spec: StudySpec, curves: dict[str, LearningCurves]) -> Plot:
    """The objective over training per group: the mean over the seeds, with a band from the lowest to the
    highest seed."""
    fig, panels = _panels(len(curves), 7, 4.5)
    palette = _palette(len(curves))
    for index, ((label, curve), ax) in enumerate(zip(curves.items(), panels)):
        steps, mean, low, high = seed_band(curve)
        color = palette[index % len(palette)]
        ax.plot(steps, mean, color=color, marker=".", label=f"{label} ({len(curve.runs)} seeds)")
        ax.fill_between(steps, low, high, color=color, alpha=0.15)
        if not _one_axis(panels):
            ax.set_title(label, fontsize=TICK_SIZE)
    _finish(fig, panels, f"{spec.objective.metric} over training, each group's best trial (mean over seeds, band "
                         "from the lowest to the highest seed)", "training step", spec.objective.metric)
    return Plot("learning_curves.png", "The objective over training", fig)

# Marks on <body> that say whether every image loaded and nothing went wrong: what a headless browser checks.
CHECK_SCRIPT = """<script>
window.ganscapeErrors = [];
window.addEventListener("error", function (e) { window.ganscapeErrors.push(String(e.message || e.type)); }, true);
var consoleError = console.error;
console.error = function () { window.ganscapeErrors.push(Array.prototype.join.call(arguments, " ")); consoleError.apply(console, arguments); };
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var loaded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute("data-images", images.length);
  document.body.setAttribute("data-images-loaded", loaded);
  document.body.setAttribute("data-errors", window.ganscapeErrors.length);
});
</script>"""


def page_head(title: str) -> str:
    """The start of a report page up to its body: its title, the style, and ``CHECK_SCRIPT``."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1100px; }}
table {{ border-collapse: collapse; font-size: 12px; }} td, th {{ border: 1px solid #ccc; padding: 3px 6px; }}
img {{ max-width: 100%; }} figure {{ display: inline-block; margin: 4px; }} figcaption {{ font-size: 11px; }}
</style>
{CHECK_SCRIPT}
</head><body>"""


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def html_table(rows: list[dict]) -> str:
    columns = list(rows[0]) if rows else []
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r[c]))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def html_page(spec: StudySpec, table: list[dict], figures: dict[str, bytes], samples: dict[str, bytes],
              counts: dict, notes: list[str] = (), tables: dict[str, list[dict]] | None = None) -> str:
    more = "".join(f"<h2>{html.escape(title)}</h2>{html_table(rows)}" for title, rows in (tables or {}).items())
    remarks = "".join(f"<p>{html.escape(note)}</p>" for note in notes)
    sections = "".join(f"<h2>{html.escape(title)}</h2>{_img(png, title)}" for title, png in figures.items())
    grids = "".join(f'<figure>{_img(png, label)}<figcaption>{html.escape(label)}</figcaption></figure>'
                    for label, png in samples.items())
    return f"""{page_head(f"{spec.name}: study report")}
<h1>{html.escape(spec.name)}</h1>
<p>{html.escape(spec.description)}</p>
<p>Objective: {spec.objective.reduce} {html.escape(spec.objective.metric)} over each run's evaluations
({spec.objective.direction}), mean over {spec.seeds} seed(s). Sampler: {spec.sampler}.
Trials: {counts['complete']} complete ({counts.get('diverged', 0)} of them diverged), {counts['pruned']} pruned,
{counts['failed']} failed (killed or lost attempts, retried, and trials whose config was invalid).</p>
<h2>Groups</h2>
{html_table(table)}
{remarks}
{more}
{sections}
<h2>Samples of each group's best trial</h2>
{grids}
</body></html>
"""


@dataclass
class StudyParts:
    """What a study's report shows, built once for its own report and for a campaign's page: ``rows`` (every
    trial, ``gather``), ``groups`` (each group's scored trials in trial order), ``table`` (``summary_rows``),
    ``figures`` (title -> PNG; ``files``: title -> its file in report/), ``samples`` (group -> PNG of its
    best trial's samples), ``counts`` (trials by state), ``failed`` (what failed trials scored), ``notes``
    (sentences for the page and summary.md: that score, and why a plot is left out) and ``tables`` (further
    titled tables, e.g. final values over training)."""

    spec: StudySpec
    rows: list[dict]
    groups: dict[str, list[dict]]
    table: list[dict]
    figures: dict[str, bytes]
    samples: dict[str, bytes]
    counts: dict
    failed: FailedScore
    files: dict[str, str]
    notes: list[str]
    tables: dict[str, list[dict]] = field(default_factory=dict)


def study_parts(folder: StudyDir) -> StudyParts:
    """Everything a study's report shows (``StudyParts``), read from its storage and runs."""
    spec, rows, studies = gather(folder)
    groups = groups_of(rows, spec, SCORED)
    failed = failed_score(spec, rows)
    notes = [failed.note()]
    if compute_axis(groups)[0] == "compute_s":
        notes.append("The compute axis is wall time: not every trial recorded the work its runs did.")
    plots = budget_figures(spec, groups, failed) + distribution_figures(spec, groups, failed)
    importance, why_not = importance_figure(spec, studies, failed)
    plots += [importance] if importance is not None else []
    notes += [why_not] if why_not else []
    tables: dict[str, list[dict]] = {}  # titled tables beyond the groups' own
    curves = learning_curves(folder, spec, groups)  # each group's best trial over training, per seed
    plots += [learning_curves_figure(spec, curves)] if curves else []
    tables |= {"Final values": final_values(spec, curves)} if curves else {}
    if spec.report_values or spec.truncation_sweep:  # an ablation's table: reported values, collapse, amenability
        best = {label: trial for label, trials in groups.items()
                if (trial := best_of([t for t in trials if t["run_dirs"]], spec)) is not None}
        tables |= {OUTCOMES: outcome_rows(folder.runs, spec, best)}
    settling = settling_section(folder.runs, groups, spec.objective.metric.rsplit("/", 1)[-1])  # log.convergence runs
    plots += [Plot("settling.png", SETTLING, settling.figure)] if settling else []
    tables |= {SETTLING: settling.rows} if settling else {}
    notes += [settling.rule] if settling else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)  # the runs' configs were checked when the study was made
        samples = best_samples(folder, spec, groups)
    states = [r["state"] for r in rows]
    counts = {"complete": states.count("COMPLETE"), "failed": states.count("FAIL"), "pruned": states.count("PRUNED"),
              "diverged": sum(r["failed"] == "diverged" for r in rows)}
    return StudyParts(spec, rows, groups, summary_rows(spec, groups, failed), {p.title: _png(p.figure) for p in plots},
                      samples, counts, failed, {p.title: p.file for p in plots}, notes, tables)


def write_report(folder: StudyDir) -> Path:
    """Write report/ of a study folder (see the module docstring); returns the HTML page's path."""
    parts = study_parts(folder)
    out = folder.path / "report"
    out.mkdir(exist_ok=True)
    write_trials_csv(out / "trials.csv", parts.rows)
    (out / "summary.md").write_text(markdown(parts.spec, parts.table, parts.notes, parts.tables))
    for title, png in parts.figures.items():
        (out / parts.files[title]).write_bytes(png)
    page = out / "index.html"
    page.write_text(html_page(parts.spec, parts.table, parts.figures, parts.samples, parts.counts, parts.notes,
                              parts.tables))
    return page
