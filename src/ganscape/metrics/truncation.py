"""BigGAN's truncation trade-off: a generator's metrics as its latents are truncated ever closer to 0.

Truncating normal latents to [-t, t] (``nets.truncated_normal``) trades variety for fidelity: the
BigGAN paper plots FID against IS over thresholds from 2 down to 0.04. ``truncation_sweep`` scores
one generator under one protocol at every threshold, starting with the latents as trained;
``plot_truncation_sweep`` draws the curve: FID against IS when both were computed, precision
against recall when those were, and otherwise each value against the threshold. Each row also holds the
share of saturated pixels of its samples, which ``amenability`` reads with the fidelity values.
"""

from __future__ import annotations

import math
from pathlib import Path

from torch import nn

from ganscape.data.base import is_image_data
from ganscape.errors import ConfigError
from ganscape.metrics.amenability import saturated_share

# (x, y) of the trade-off picture, in order of preference: the paper's FID vs IS, then precision vs recall
CURVES = (("is_mean", "fid"), ("recall", "precision"))


def parse_thresholds(text: str) -> list[float]:
    """``0.2,0.4,1`` -> [1.0, 0.4, 0.2]: distinct positive thresholds, from the least truncated."""
    try:
        values = [float(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise ConfigError(f"--truncation-sweep takes comma-separated thresholds such as 0.25,0.5,1,2, not "
                          f"{text!r}.") from None
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise ConfigError(f"truncation thresholds must be finite and > 0, got {text!r}.")
    return sorted(set(values), reverse=True)


def truncation_sweep(evaluator, G: nn.Module, thresholds: list[float]) -> list[dict]:
    """The evaluator's metrics of ``G`` without truncation, then at each threshold (same latents' seed,
    same reference): a list of ``{"truncation": t or None, "values": {...}, "saturation": share or None}``,
    where ``saturation`` is the share of saturated pixel values of the ``num_samples`` samples
    (``amenability.saturated_share``; None when they are not images)."""
    rows = []
    try:
        for threshold in [None, *thresholds]:
            evaluator.truncation = threshold
            saturation = (saturated_share(evaluator.samples(G, evaluator.num_samples, evaluator.batch_size))
                          if is_image_data(evaluator.reference) else None)
            rows.append({"truncation": threshold, "values": evaluator(G), "saturation": saturation})
    finally:
        evaluator.truncation = None
    return rows


def plot_truncation_sweep(rows: list[dict], path: Path, title: str) -> Path:
    """The trade-off curve of a sweep as a PNG, each point labelled with its threshold."""
    truncation_figure(rows, title).savefig(path)
    return path


def truncation_figure(rows: list[dict], title: str):
    """The figure of ``plot_truncation_sweep``; an axis of whole-number values (modes covered) gets whole-number
    ticks."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ganscape.plots import count_axis

    values = rows[0]["values"]
    pair = next(((x, y) for x, y in CURVES if x in values and y in values), None)
    keys = [pair] if pair else [("truncation", key) for key, v in values.items() if isinstance(v, (int, float))]
    fig = Figure(figsize=(5.5 * len(keys[:3]), 4.5), dpi=100)
    FigureCanvasAgg(fig)
    for index, (x_key, y_key) in enumerate(keys[:3], 1):
        ax = fig.add_subplot(1, len(keys[:3]), index)
        labels = ["none" if r["truncation"] is None else f"{r['truncation']:g}" for r in rows]
        xs = [r["truncation"] if x_key == "truncation" else r["values"][x_key] for r in rows]
        if x_key == "truncation":  # the untruncated point sits to the right of the largest threshold
            largest = max((x for x in xs if x is not None), default=1.0)
            xs = [2 * largest if x is None else x for x in xs]
        ys = [r["values"][y_key] for r in rows]
        ax.plot(xs, ys, marker="o")
        for x, y, label in zip(xs, ys, labels):
            ax.annotate(label, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xlabel("truncation threshold (none: as trained)" if x_key == "truncation" else x_key)
        ax.set_ylabel(y_key)
        ax.grid(alpha=0.3)
        for axis, key in ((ax.xaxis, x_key), (ax.yaxis, y_key)):
            if key != "truncation" and all(isinstance(r["values"][key], int) for r in rows):
                count_axis(axis)
    fig.suptitle(title, fontsize=9, wrap=True)
    fig.tight_layout()
    return fig
