"""Does each group's training settle? The report section of studies whose runs log ``log.convergence``.

From the rows of each run's metrics.jsonl that hold the convergence measures (``training.convergence``:
``convergence/g_move``, G's parameter movement per update, and ``convergence/d_grad_real``, D's
root-mean-square gradient norm at real data), cut into four consecutive quarters of equal row counts
(``numpy.array_split``), each measure's mean per quarter; a group's quarter means are the means of its runs'.
The table gives per group, over the **last quarter** of the log rows (the last 25% of training): the mean
g_move and d_grad_real, their trend (last quarter's mean / the quarter before's: below 1 falling), how far
d_grad_real has come down from its largest quarter (last / peak), the study's quality metric (each seed's
objective: mean and sample standard deviation over the group's seeds), how many of its runs settle, and
the verdict on the group's mean quarters.

The verdict (``settles``) follows Mescheder et al.'s notion of convergence: at their equilibrium D is flat
on the data and G is at rest. A run "settles" when

1. D's gradient at the data has come down: its last quarter is at most ``PEAK_FRACTION`` (half) of its
   largest quarter,
2. and is still falling or flat: last quarter <= the quarter before,
3. and G is not moving ever more: g_move's last quarter <= ``MOVE_GROWTH`` (1.1) x the quarter before.

Otherwise it "does not settle": D stays sharp or grows sharper at the data (the unregularized GAN's
oscillation, or WGAN-GP's critic, whose optimum has gradient norm 1), or G speeds up. With a constant
learning rate an adaptive optimizer (RMSProp, Adam) keeps G moving by about the learning rate per
parameter and update even at an equilibrium (gradient noise), so g_move rarely falls to 0; the rule only
asks that it stops growing. The figure draws both measures over training, one line per group (the mean of
its runs at each logged step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ganscape.store.rundir import read_log

TITLE = "Does the generator settle?"
MEASURES = ("convergence/g_move", "convergence/d_grad_real")
QUARTERS = 4
PEAK_FRACTION = 0.5  # rule 1: the last quarter of d_grad_real at most this fraction of its largest quarter
MOVE_GROWTH = 1.1  # rule 3: g_move's last quarter at most this multiple of the quarter before
RULE = ("Settling: measured over the last 25% of each run's log rows. A group settles when D's gradient at the "
        f"data has come down to at most {PEAK_FRACTION:g} x its largest quarter, is not rising (last quarter <= the "
        f"quarter before), and G's movement per update is not growing (last quarter <= {MOVE_GROWTH:g} x the "
        "quarter before); quality: mean and sample standard deviation over seeds.")


def convergence_rows(rows: list[dict]) -> list[dict]:
    """The rows of a run's log that hold the convergence measures, in step order."""
    return sorted((r for r in rows if MEASURES[1] in r), key=lambda r: r["step"])


def quarter_means(values: list[float]) -> np.ndarray:
    """The means of four consecutive, nearly equal parts of ``values`` (NaN entries, e.g. a g_move a row did
    not log, left out); NaN for a part with no value."""
    parts = np.array_split(np.asarray(values, dtype=np.float64), QUARTERS)
    return np.array([np.nanmean(p) if np.isfinite(p).any() else math.nan for p in parts])


def run_quarters(rows: list[dict]) -> dict[str, np.ndarray] | None:
    """Each measure's quarter means over a run's convergence rows; None when it logged fewer than four."""
    logged = convergence_rows(rows)
    if len(logged) < QUARTERS:
        return None
    return {m: quarter_means([r.get(m, math.nan) for r in logged]) for m in MEASURES}


def settles(quarters: dict[str, np.ndarray]) -> bool:
    """The verdict of the module docstring on one set of quarter means."""
    move, grad = quarters[MEASURES[0]], quarters[MEASURES[1]]
    return bool(grad[-1] <= PEAK_FRACTION * np.nanmax(grad) and grad[-1] <= grad[-2]
                and move[-1] <= MOVE_GROWTH * move[-2])


def group_row(label: str, runs: list[dict[str, np.ndarray]], quality: list[float], metric: str) -> dict:
    """A group's row of the settling table from its runs' quarter means and its seeds' objective values."""
    mean = {m: np.mean([q[m] for q in runs], axis=0) for m in MEASURES}
    move, grad = mean[MEASURES[0]], mean[MEASURES[1]]
    finite = [v for v in quality if math.isfinite(v)]
    return {"group": label, "runs": len(runs),
            "g_move_last": float(move[-1]), "g_move_trend": float(move[-1] / move[-2]),
            "d_grad_real_last": float(grad[-1]), "d_grad_real_trend": float(grad[-1] / grad[-2]),
            "d_grad_real_vs_peak": float(grad[-1] / np.nanmax(grad)),
            f"{metric}_mean": float(np.mean(finite)) if finite else math.nan,
            f"{metric}_std": float(np.std(finite, ddof=1)) if len(finite) > 1 else math.nan,
            "runs_settling": f"{sum(settles(q) for q in runs)}/{len(runs)}",
            "verdict": "settles" if settles(mean) else "does not settle"}


def mean_curve(runs: list[list[dict]], measure: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, the mean over runs of ``measure`` at each step that some run logged it)."""
    by_step: dict[int, list[float]] = {}
    for rows in runs:
        for row in convergence_rows(rows):
            if measure in row:
                by_step.setdefault(int(row["step"]), []).append(float(row[measure]))
    steps = sorted(by_step)
    return np.array(steps), np.array([np.mean(by_step[s]) for s in steps])


def settling_figure(logs: dict[str, list[list[dict]]]) -> Figure:
    """g_move and d_grad_real over training, a line per group (the mean of its runs), log scales."""
    fig = Figure(figsize=(10, 4.2), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    titles = {MEASURES[0]: "G's parameter movement per update (g_move)",
              MEASURES[1]: "D's RMS gradient norm at real data (d_grad_real)"}
    for ax, measure in zip(axes, MEASURES):
        for label, runs in logs.items():
            steps, values = mean_curve(runs, measure)
            ax.plot(steps, values, label=label, linewidth=1.2)
        ax.set_yscale("log")
        ax.set_title(titles[measure], fontsize=10)
        ax.set_xlabel("step")
        ax.tick_params(labelsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6), fontsize=9)
    fig.suptitle("Does the generator settle? (mean over each group's runs)", fontsize=11)
    return fig


@dataclass
class Settling:
    """The section: its table (one row per group), its figure and the rule it applies (a note)."""

    rows: list[dict]
    figure: Figure
    rule: str = RULE


def settling_section(runs_folder: Path, groups: dict[str, list[dict]], metric: str) -> Settling | None:
    """The settling section of a study's report from its groups' trials (rows of ``report.gather``, with
    ``run_dirs`` relative to ``runs_folder`` and each seed's objective in ``seed_values``); None when no run
    logged the convergence measures (runs trained elsewhere, whose folders are absent, are left out)."""
    logs: dict[str, list[list[dict]]] = {}
    quality: dict[str, list[float]] = {}
    for label, trials in groups.items():
        done = [t for t in trials if t["state"] == "COMPLETE"]
        paths = [runs_folder / name / "metrics.jsonl" for t in done for name in t["run_dirs"]]
        logs[label] = [read_log(p) for p in paths if p.is_file()]
        quality[label] = [float(v) for t in done for v in t["seed_values"]]
    quarters = {label: [q for rows in runs if (q := run_quarters(rows)) is not None] for label, runs in logs.items()}
    if not any(quarters.values()):
        return None
    rows = [group_row(label, quarters[label], quality[label], metric) for label in groups if quarters[label]]
    return Settling(rows, settling_figure({label: runs for label, runs in logs.items() if quarters[label]}))
