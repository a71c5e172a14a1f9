"""The landscape grid: every combination of losses x penalties x D normalizations x seeds.

Each cell trains the same preset with one loss, one penalty (or none) and one discriminator
normalization, once per seed, in parallel worker processes. The results go into
``grid.csv`` (one row per run), ``grid.md`` (mean and std over seeds per cell) and ``grid.png``
(one panel of final samples per cell, first seed).
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ganscape.errors import ConfigError, ConfigWarning, DivergenceError

METRICS = ("modes_covered", "high_quality_pct", "kl_to_uniform")
PICTURE_POINTS = 1000  # final samples drawn for grid.png, from each cell's first seed


@dataclass(frozen=True)
class Cell:
    """One combination. ``penalty`` is ``none``, a name, or ``name:weight``."""

    loss: str
    penalty: str
    norm: str

    def overrides(self) -> list[str]:
        return [f"loss={self.loss}", f"penalty={self.penalty}", f"d.norm={self.norm}"]

    @property
    def slug(self) -> str:
        return f"{self.loss}-{self.penalty.replace(':', '')}-{self.norm}"


def cells(losses: list[str], penalties: list[str], norms: list[str]) -> list[Cell]:
    return [Cell(loss, penalty, norm) for loss in losses for penalty in penalties for norm in norms]


def run_overrides(cell: Cell, seed: int, out: Path, steps: int | None) -> list[str]:
    """What a grid run adds to the user's overrides: its cell, seed, place and quiet logging."""
    never = 10**12
    extra = [f"train.steps={steps}"] if steps else []
    return cell.overrides() + extra + [
        f"train.seed={seed}", f"run.root={out / 'runs'}", f"run.name={cell.slug}-s{seed}",
        "log.tensorboard=false", "log.samples_every=0", f"checkpoint.every={never}", "checkpoint.keep=1"]


def check_cells(preset, overrides, grid: list[Cell], out: Path, steps) -> list[str]:
    """Validate every cell's config before any training; return each distinct warning once."""
    from ganscape.config import load_config

    advice: list[str] = []
    for cell in grid:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConfigWarning)
            try:
                load_config(preset, list(overrides) + run_overrides(cell, 0, out, steps))
            except ConfigError as err:
                raise ConfigError(f"grid cell {cell.slug}: {err}") from None
        advice += [f"{cell.slug}: {w.message}" for w in caught if issubclass(w.category, ConfigWarning)]
    return advice


def run_cell(preset, overrides, cell: Cell, seed: int, out: Path, steps: int | None, sample_points: int):
    """Train one grid run (in a worker process); return its table row and final samples."""
    import time

    import torch

    from ganscape.config import load_config
    from ganscape.training.loop import train
    from ganscape.training.sampling import generate, load_run_generator
    from ganscape.training.state import derived_seed
    from ganscape.training.run import RunDir

    torch.set_num_threads(1)  # one process per core beats threads for small networks
    warnings.simplefilter("ignore", ConfigWarning)  # reported once by check_cells
    cfg = load_config(preset, list(overrides) + run_overrides(cell, seed, out, steps))
    run = RunDir.create(cfg)
    tic = time.perf_counter()
    row = {"loss": cell.loss, "penalty": cell.penalty, "norm": cell.norm, "seed": seed, "run_dir": str(run)}
    points = None
    try:
        results = train(cfg, run, progress=False)["results"]
        row |= {"status": "ok", **{m: results.get(f"eval/{m}", math.nan) for m in METRICS},
                "num_modes": results.get("eval/num_modes", math.nan)}
        if sample_points:
            G, _, _, _ = load_run_generator(run)
            points = generate(G, sample_points, cfg, derived_seed(seed, "grid-samples"), "cpu").numpy()
    except DivergenceError as err:
        row |= {"status": "diverged", **{m: math.nan for m in METRICS}, "num_modes": math.nan, "error": str(err)}
    row["wall_s"] = round(time.perf_counter() - tic, 2)
    return row, points


def run_grid(preset, overrides, grid: list[Cell], seeds: int, out: Path, steps: int | None = None,
             workers: int = 1, progress: bool = True) -> tuple[list[dict], dict[Cell, np.ndarray]]:
    """Train every cell for ``seeds`` seeds; return the rows and the first seed's samples per cell."""
    jobs = [(cell, seed) for cell in grid for seed in range(seeds)]
    rows, samples = [], {}
    bar = tqdm(total=len(jobs), desc="grid", unit="run", disable=not progress, dynamic_ncols=True)

    def collect(cell, row, points):
        rows.append(row)
        if points is not None:
            samples[cell] = points
        bar.update(1)
        bar.set_postfix_str(f"{cell.slug} s{row['seed']}: {row['status']}")

    def points(seed: int) -> int:
        return PICTURE_POINTS if seed == 0 else 0

    if workers <= 1:
        for cell, seed in jobs:
            collect(cell, *run_cell(preset, overrides, cell, seed, out, steps, points(seed)))
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            futures = {pool.submit(run_cell, preset, overrides, cell, seed, out, steps, points(seed)): cell
                       for cell, seed in jobs}
            for future in as_completed(futures):
                collect(futures[future], *future.result())
    bar.close()
    order = {(cell, seed): i for i, (cell, seed) in enumerate(jobs)}
    rows.sort(key=lambda r: order[(Cell(r["loss"], r["penalty"], r["norm"]), r["seed"])])
    return rows, samples


def summarize(rows: list[dict], grid: list[Cell]) -> list[dict]:
    """Mean and std over seeds of each metric, per cell, in grid order."""
    table = []
    for cell in grid:
        runs = [r for r in rows if (r["loss"], r["penalty"], r["norm"]) == (cell.loss, cell.penalty, cell.norm)]
        ok = [r for r in runs if r["status"] == "ok"]
        entry = {"cell": cell, "runs": len(runs), "diverged": len(runs) - len(ok),
                 "num_modes": ok[0]["num_modes"] if ok else math.nan}
        for metric in METRICS:
            values = np.array([r[metric] for r in ok], dtype=float)
            finite = values[np.isfinite(values)]  # a KL is infinite when a run has no high-quality sample
            stats = (float(finite.mean()), float(finite.std())) if len(finite) else (math.nan, math.nan)
            entry[metric] = (*stats, int(np.isinf(values).sum()))
        table.append(entry)
    return table


def write_csv(rows: list[dict], path: Path) -> None:
    columns = ["loss", "penalty", "norm", "seed", "status", *METRICS, "num_modes", "wall_s", "run_dir"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _mean_std(stats: tuple[float, float, int], digits: int) -> str:
    """Mean ± std over the runs with a finite value; runs where it was infinite are counted apart."""
    mean, std, infinite = stats
    text = "n/a" if math.isnan(mean) else f"{mean:.{digits}f} ± {std:.{digits}f}"
    if infinite:
        text = f"∞ in {infinite} run(s)" if math.isnan(mean) else f"{text}; ∞ in {infinite} run(s)"
    return text


def markdown_table(table: list[dict]) -> str:
    lines = ["| loss | penalty | D norm | modes covered | high quality (%) | KL to uniform | diverged |",
             "|---|---|---|---|---|---|---|"]
    for e in table:
        cell = e["cell"]
        modes = _mean_std(e["modes_covered"], 1)
        if not math.isnan(e["num_modes"]):
            modes += f" / {int(e['num_modes'])}"
        lines.append(f"| {cell.loss} | {cell.penalty} | {cell.norm} | {modes} | {_mean_std(e['high_quality_pct'], 1)} "
                     f"| {_mean_std(e['kl_to_uniform'], 3)} | {e['diverged']}/{e['runs']} |")
    return "\n".join(lines) + "\n"


def plot_grid(table: list[dict], samples: dict, centers, path: Path) -> None:
    """Small multiples: one row per loss, one column per (penalty, norm), final samples of seed 0."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    losses = list(dict.fromkeys(e["cell"].loss for e in table))
    columns = list(dict.fromkeys((e["cell"].penalty, e["cell"].norm) for e in table))
    fig = Figure(figsize=(2.2 * len(columns), 2.2 * len(losses) + 0.4), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(losses), len(columns), squeeze=False)
    centers = np.asarray(centers)
    lim = np.abs(centers).max() * 1.5
    for e in table:
        cell = e["cell"]
        ax = axes[losses.index(cell.loss)][columns.index((cell.penalty, cell.norm))]
        ax.scatter(centers[:, 0], centers[:, 1], s=12, c="0.2", marker="x", linewidths=0.8)
        if cell in samples:
            pts = samples[cell]
            ax.scatter(pts[:, 0], pts[:, 1], s=1, c="tab:orange", alpha=0.5)
        mean_modes = e["modes_covered"][0]
        label = "diverged" if math.isnan(mean_modes) else (
            f"{mean_modes:.1f}/{int(e['num_modes'])} modes, {e['high_quality_pct'][0]:.0f}% HQ")
        ax.text(0.5, 0.02, label, transform=ax.transAxes, ha="center", va="bottom", fontsize=7)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_xticks([])
        ax.set_yticks([])
    for j, (penalty, norm) in enumerate(columns):
        axes[0][j].set_title(f"{penalty}\nD norm: {norm}", fontsize=8)
    for i, loss in enumerate(losses):
        axes[i][0].set_ylabel(loss, fontsize=10)
    fig.suptitle("final samples (first seed); text: mean over seeds", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
