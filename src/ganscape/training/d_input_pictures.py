"""Pictures of a run's D-input pipeline: real images as D sees them, and ADA's p over the steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ganscape.data.base import Dataset
from ganscape.jsonio import write_atomically
from ganscape.objectives.d_input import DInput
from ganscape.plots import count_axis, sample_picture, save_png

PICTURE_IMAGES = 32  # real images in the augmented-reals picture: 4 rows of 8, then the same as D sees them
P_KEY = "augment/p"  # ADA's p in metrics.jsonl


def save_augmented_reals(pipeline: DInput, data: Dataset, seed: int, path: Path) -> np.ndarray:
    """Write a picture of real images (upper rows) and the same images as D sees them at step 0 (lower rows),
    drawn from generators seeded with ``seed`` (never the run's streams); returns it as RGB."""
    real, _ = data.sample(PICTURE_IMAGES, torch.Generator().manual_seed(seed))
    real = real.float()
    with torch.no_grad():
        seen, what = pipeline.preview(real, torch.Generator(real.device).manual_seed(seed))
    rgb = sample_picture(torch.cat([real, seen]), columns=8,
                         title=f"upper rows: real images; lower rows: the same as D sees them, with {what}")
    save_png(rgb, path)
    return rgb


def save_p_curve(rows: list[dict], path: Path) -> Path | None:
    """Write a plot of ADA's p at the logged steps (``augment/p`` in ``rows``, metrics.jsonl's records);
    None, and nothing written, when no record has it."""
    points = [(row["step"], row[P_KEY]) for row in rows if P_KEY in row]
    if not points:
        return None
    steps, values = zip(*points)
    fig = Figure(figsize=(6, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(steps, values, color="tab:blue", marker="." if len(points) < 50 else None)
    ax.set_ylim(0, 1.1 * max(*values, 0.01))  # p often stays small: the axis fits the curve, not [0, 1]
    ax.set_xlabel("step")
    ax.set_ylabel("p")
    count_axis(ax.xaxis)
    ax.set_title("ADA's augmentation probability p", fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    write_atomically(path, lambda tmp: fig.savefig(tmp, format="png"))
    return path
