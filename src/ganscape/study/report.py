"""A study's report: tables (CSV, Markdown) and a self-contained HTML page of plots.

    report/trials.csv     one row per trial: group, parameters, objective per seed and mean, wall time of
                          the attempt and compute of every attempt of the trial
    report/summary.md     per group: trials, diverged, best, median, mean of the top 5%, expected best of k
    report/index.html     the tables and the plots, images embedded (one file to send or open anywhere)
    report/*.png          the plots: budget curves against k and against compute, the top 5% per group,
                          every trial's score per group, parameter importances, each group's best samples

The expected best of k trials is exact (``budget.expected_best``), with a bootstrap band. Diverged
trials (an infinite objective) are counted per group and left out of the curves.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import warnings
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ganscape.errors import ConfigWarning
from ganscape.plots import count_axis
from ganscape.study.budget import expected_best, expected_best_curve
from ganscape.study.engine import StudyDir, _optuna, load_studies
from ganscape.study.leases import last_beat
from ganscape.study.spec import StudySpec

TOP_FRACTION = 0.05


def attempt_seconds(trial) -> float:
    """The compute of one attempt of a trial: its runs' wall times when it finished them; otherwise (killed,
    interrupted, lost, pruned, still running) from its claim to its worker's last heartbeat."""
    if "wall_s" in trial.user_attrs:
        return float(sum(trial.user_attrs["wall_s"]))
    if trial.datetime_start is None:  # still waiting
        return 0.0
    return max(0.0, last_beat(trial) - trial.datetime_start.timestamp())


def gather(folder: StudyDir) -> tuple[StudySpec, list[dict], list[tuple[dict, object]]]:
    """(spec, one row per trial of every group, [(group, its Optuna study)]). A row's ``wall_s`` is its own
    attempt's compute; ``compute_s`` adds the attempts it retries (a killed attempt's time is spent too)."""
    optuna = _optuna()
    spec, studies = load_studies(folder)
    rows = []
    for _, study in studies:
        compute = {}  # trial number -> compute of every attempt so far; a retry comes after what it retries
        for trial in study.get_trials(deepcopy=False):
            attrs = trial.user_attrs
            wall = attempt_seconds(trial)
            compute[trial.number] = wall + compute.get(attrs.get("retry_of"), 0.0)
            rows.append({"trial": trial.number, "state": trial.state.name, "group": attrs.get("group_label", ""),
                         "value": trial.value if trial.state == optuna.trial.TrialState.COMPLETE else math.nan,
                         "seed_values": attrs.get("seed_values", []), "wall_s": wall,
                         "compute_s": compute[trial.number],
                         "diverged": bool(attrs.get("diverged", False)), "retry_of": attrs.get("retry_of", ""),
                         "run_dirs": attrs.get("run_dirs", []), **{f"param:{k}": v for k, v in trial.params.items()}})
    return spec, rows, studies


def groups_of(rows: list[dict], spec: StudySpec) -> dict[str, list[dict]]:
    from ganscape.study.engine import group_label

    order = [group_label(g) for g in spec.group_names()]
    return {label: [r for r in rows if r["group"] == label and r["state"] == "COMPLETE"] for label in order}


def best_of(trials: list[dict], spec: StudySpec) -> dict | None:
    """The completed trial with the best finite objective (None when there is none)."""
    finite = [t for t in trials if math.isfinite(t["value"])]
    if not finite:
        return None
    return (min if spec.objective.direction == "minimize" else max)(finite, key=lambda t: t["value"])


def summary_rows(spec: StudySpec, groups: dict[str, list[dict]]) -> list[dict]:
    minimize = spec.objective.direction == "minimize"
    table = []
    for label, trials in groups.items():
        scores = np.array([t["value"] for t in trials], dtype=np.float64)
        finite = np.sort(scores[np.isfinite(scores)])
        if not minimize:
            finite = finite[::-1]
        top = finite[:max(1, math.ceil(TOP_FRACTION * len(finite)))] if len(finite) else finite
        row = {"group": label, "trials": len(trials), "diverged": int((~np.isfinite(scores)).sum()),
               "best": float(finite[0]) if len(finite) else math.nan,
               "median": float(np.median(finite)) if len(finite) else math.nan,
               "top_5pct_mean": float(top.mean()) if len(top) else math.nan,
               "mean_compute_s": float(np.mean([t["compute_s"] for t in trials])) if trials else math.nan}
        for k in (1, 5, 10):
            row[f"expected_best_of_{k}"] = expected_best(finite, k, minimize) if len(finite) else math.nan
        table.append(row)
    return table


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) and math.isfinite(value) else ("n/a" if isinstance(value, float)
                                                                                     else str(value))


def markdown(spec: StudySpec, table: list[dict]) -> str:
    columns = ["group", "trials", "diverged", "best", "median", "top_5pct_mean", "expected_best_of_1",
               "expected_best_of_5", "expected_best_of_10", "mean_compute_s"]
    head = (f"# {spec.name}\n\nObjective: {spec.objective.reduce} {spec.objective.metric} over each run's "
            f"evaluations ({spec.objective.direction}), mean over {spec.seeds} seed(s) per trial; sampler "
            f"{spec.sampler}.\n\n")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row[c]) for c in columns) + " |" for row in table]
    return head + "\n".join(lines) + "\n"


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _figure(width=7.0, height=4.5) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def budget_plots(spec: StudySpec, groups: dict[str, list[dict]]) -> tuple[bytes, bytes]:
    """The PNGs of ``budget_figures``."""
    by_k, by_compute = budget_figures(spec, groups)
    return _png(by_k), _png(by_compute)


def budget_figures(spec: StudySpec, groups: dict[str, list[dict]]) -> tuple[Figure, Figure]:
    """Expected best of k trials with its bootstrap band, against k and against compute (k times the mean
    compute of the group's trials, every attempt of a trial and diverged trials included: they cost compute too)."""
    from matplotlib import colormaps
    from matplotlib.ticker import ScalarFormatter

    minimize = spec.objective.direction == "minimize"
    seconds = [np.mean([t["compute_s"] for t in trials]) for trials in groups.values() if trials]
    unit, per = ("hours", 3600) if seconds and max(seconds) * max(len(t) for t in groups.values()) > 3600 \
        else ("minutes", 60)
    figs = [_figure(7, 5.5), _figure(7, 5.5)]
    axes = [fig.add_subplot() for fig in figs]
    palette = colormaps["tab10" if len(groups) <= 10 else "tab20"].colors
    for index, (label, trials) in enumerate(groups.items()):
        scores = [t["value"] for t in trials if math.isfinite(t["value"])]
        if not scores:
            continue
        ks = np.arange(1, max(2, len(scores)) + 1)
        curve = expected_best_curve(scores, ks, minimize)
        cost = np.mean([t["compute_s"] for t in trials]) / per
        color = palette[index % len(palette)]
        for ax, x in ((axes[0], ks), (axes[1], ks * cost)):
            ax.plot(x, curve["mean"], color=color, label=label, marker=".")
            ax.fill_between(x, curve["low"], curve["high"], color=color, alpha=0.08)
    for ax, xlabel in ((axes[0], "trials k"),
                       (axes[1], f"compute of k trials ({unit} of one worker, every attempt of a trial)")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"expected best {spec.objective.metric}")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(ScalarFormatter())
        ax.tick_params(axis="x", which="minor", labelsize=7)
        ax.set_title("best score reachable with a budget (mean, 95% bootstrap band)", fontsize=9, wrap=True)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2)
    count_axis(axes[0].xaxis)
    for fig in figs:
        fig.tight_layout()
    return figs[0], figs[1]


def distribution_plots(spec: StudySpec, groups: dict[str, list[dict]]) -> tuple[bytes, bytes]:
    """Box plots of each group's top 5% of trials, and every trial's score per group."""
    minimize = spec.objective.direction == "minimize"
    labels = list(groups)
    tops, alls = [], []
    for label in labels:
        scores = np.sort([t["value"] for t in groups[label] if math.isfinite(t["value"])])
        scores = scores if minimize else scores[::-1]
        tops.append(scores[:max(1, math.ceil(TOP_FRACTION * len(scores)))] if len(scores) else [])
        alls.append(scores)
    pictures = []
    for data, title in ((tops, "the top 5% of trials"), (alls, "every trial")):
        fig = _figure(7, 0.35 * len(labels) + 1.5)
        ax = fig.add_subplot()
        positions = np.arange(len(labels))
        ax.boxplot([d if len(d) else [math.nan] for d in data], positions=positions, vert=False, widths=0.6)
        for y, d in zip(positions, data):
            ax.scatter(d, np.full(len(d), y) + np.random.default_rng(0).uniform(-0.15, 0.15, len(d)), s=8,
                       alpha=0.6)
        ax.set_yticks(positions, labels, fontsize=6)
        ax.set_xlabel(spec.objective.metric)
        ax.set_title(f"{title}, per group", fontsize=9, wrap=True)
        fig.tight_layout()
        pictures.append(_png(fig))
    return pictures[0], pictures[1]


def importance_plot(studies: list[tuple[dict, object]]) -> bytes | None:
    """Optuna's parameter importances over each group's completed trials (one bar per group and parameter),
    when there are enough trials to compute them."""
    optuna = _optuna()
    from ganscape.study.engine import group_label

    importances = {}
    for group, study in studies:
        finite = [t.value for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                  if math.isfinite(t.value)]
        if len(finite) < 3:
            continue
        low, high = min(finite), max(finite)  # a diverged trial (infinite) counts as the worst finite one
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna's note that few trials give equal importances
                importances[group_label(group)] = optuna.importance.get_param_importances(
                    study, target=lambda t, low=low, high=high: min(max(t.value, low), high))
        except (RuntimeError, ValueError):  # parameters that never varied
            continue
    importances = {label: values for label, values in importances.items() if values}
    if not importances:
        return None
    names = sorted({name for values in importances.values() for name in values})
    fig = _figure(7, 0.25 * len(names) * len(importances) + 1.5)
    ax = fig.add_subplot()
    height = 0.8 / len(importances)
    for j, (label, values) in enumerate(importances.items()):
        ax.barh(np.arange(len(names)) + j * height, [values.get(n, 0.0) for n in names], height=height, label=label)
    ax.set_yticks(np.arange(len(names)) + 0.4 - height / 2, names)
    ax.set_xlabel("importance (Optuna's PED-ANOVA), per group")
    ax.legend(fontsize=6, loc="best")
    fig.tight_layout()
    return _png(fig)


def best_samples(folder: StudyDir, spec: StudySpec, groups: dict[str, list[dict]]) -> dict[str, bytes]:
    """A picture of the samples of each group's best trial (its first seed's run)."""
    from PIL import Image

    from ganscape.hub import load_generator
    from ganscape.plots import sample_picture
    from ganscape.training.sampling import points_picture

    pictures = {}
    for label, trials in groups.items():
        best = best_of([t for t in trials if t["run_dirs"]], spec)
        if best is None:
            continue
        run = folder.runs / best["run_dirs"][0]
        if not run.is_dir():
            continue  # trained on another machine
        model = load_generator(run)
        if len(model.spec.shape) == 3:
            rgb = sample_picture(model.sample(16, seed=0), columns=8)
        else:
            rgb = points_picture(model.sample(1000, seed=0), model.config, f"{label}: trial {best['trial']}")
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, format="png")
        pictures[label] = buffer.getvalue()
    return pictures


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


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def html_page(spec: StudySpec, table: list[dict], figures: dict[str, bytes], samples: dict[str, bytes],
              counts: dict) -> str:
    columns = list(table[0]) if table else []
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r[c]))}</td>" for c in columns) + "</tr>" for r in table)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    sections = "".join(f"<h2>{html.escape(title)}</h2>{_img(png, title)}" for title, png in figures.items())
    grids = "".join(f'<figure>{_img(png, label)}<figcaption>{html.escape(label)}</figcaption></figure>'
                    for label, png in samples.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(spec.name)}: study report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1100px; }}
table {{ border-collapse: collapse; font-size: 12px; }} td, th {{ border: 1px solid #ccc; padding: 3px 6px; }}
img {{ max-width: 100%; }} figure {{ display: inline-block; margin: 4px; }} figcaption {{ font-size: 11px; }}
</style>
{CHECK_SCRIPT}
</head><body>
<h1>{html.escape(spec.name)}</h1>
<p>{html.escape(spec.description)}</p>
<p>Objective: {spec.objective.reduce} {html.escape(spec.objective.metric)} over each run's evaluations
({spec.objective.direction}), mean over {spec.seeds} seed(s). Sampler: {spec.sampler}.
Trials: {counts['complete']} complete, {counts['failed']} failed, {counts['pruned']} pruned.</p>
<h2>Groups</h2>
<table><tr>{head}</tr>{rows}</table>
{sections}
<h2>Samples of each group's best trial</h2>
{grids}
</body></html>
"""


def write_report(folder: StudyDir) -> Path:
    """Write report/ of a study folder (see the module docstring); returns the HTML page's path."""
    spec, rows, studies = gather(folder)
    out = folder.path / "report"
    out.mkdir(exist_ok=True)
    params = sorted({k for r in rows for k in r if k.startswith("param:")})
    with open(out / "trials.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["trial", "state", "group", *params, "value", "seed_values", "diverged", "wall_s", "compute_s",
                         "retry_of", "run_dirs"])
        for r in rows:
            writer.writerow([r["trial"], r["state"], r["group"], *[r.get(p, "") for p in params], r["value"],
                             " ".join(f"{v:.6g}" for v in r["seed_values"]), r["diverged"], f"{r['wall_s']:.2f}",
                             f"{r['compute_s']:.2f}", r["retry_of"], " ".join(r["run_dirs"])])
    groups = groups_of(rows, spec)
    table = summary_rows(spec, groups)
    (out / "summary.md").write_text(markdown(spec, table))
    by_k, by_compute = budget_plots(spec, groups)
    top, every = distribution_plots(spec, groups)
    figures = {"Expected best score against the number of trials": by_k,
               "Expected best score against compute": by_compute,
               "The top 5% of trials per group": top, "Every trial's score per group": every}
    importance = importance_plot(studies)
    if importance is not None:
        figures["Parameter importances"] = importance
    files = {"Expected best score against the number of trials": "budget_trials.png",
             "Expected best score against compute": "budget_compute.png",
             "The top 5% of trials per group": "top5.png", "Every trial's score per group": "scores.png",
             "Parameter importances": "importances.png"}
    for title, png in figures.items():
        (out / files[title]).write_bytes(png)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)  # the runs' configs were checked when the study was made
        samples = best_samples(folder, spec, groups)
    states = [r["state"] for r in rows]
    counts = {"complete": states.count("COMPLETE"), "failed": states.count("FAIL"), "pruned": states.count("PRUNED")}
    page = out / "index.html"
    page.write_text(html_page(spec, table, figures, samples, counts))
    return page
