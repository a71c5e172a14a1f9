"""The picture of a run's singular values in the style of BigGAN's Figure 3 (Brock et al., 2019): sigma_0 of
each weight layer over the steps, G and D side by side, from what ``log.spectra_every`` logged."""

from __future__ import annotations

from pathlib import Path

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ganscape.errors import ConfigError
from ganscape.jsonio import write_atomically
from ganscape.plots import count_axis
from ganscape.store.rundir import RunDir, read_metrics
from ganscape.training.spectra import NETS, sigma0_curves

LEGEND_COLUMN = 24  # layers per legend column


def draw_sigma0(ax: Axes, net: str, layers: dict[str, tuple[list[int], list[float]]], log_scale: bool) -> None:
    """One panel: a line per layer, coloured from dark (the first layer) to light (the last)."""
    cmap = colormaps["viridis"]
    for i, (layer, (steps, values)) in enumerate(layers.items()):
        ax.plot(steps, values, color=cmap(0.9 * i / max(len(layers) - 1, 1)), linewidth=1.2, label=layer,
                marker="." if len(steps) < 30 else None)
    ax.set_title(f"{net}: σ₀ of each weight (first layer dark, last light)", fontsize=10)
    ax.set_xlabel("step")
    ax.set_ylabel("σ₀ of the unnormalized weight")
    if log_scale:
        ax.set_yscale("log")
    count_axis(ax.xaxis)
    ax.grid(alpha=0.3)
    if layers:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.0, 1.0), ncol=-(-len(layers) // LEGEND_COLUMN))
    else:
        ax.text(0.5, 0.5, f"no weight of {net} logged", transform=ax.transAxes, ha="center")


def save_spectra_picture(rows: list[dict], path: Path, title: str, log_scale: bool = False) -> Path | None:
    """Write the picture of sigma_0 per layer over the steps from metrics.jsonl's ``rows``; None, and nothing
    written, when no row holds singular values."""
    curves = sigma0_curves(rows)
    if not any(curves.values()):
        return None
    fig = Figure(figsize=(15, 5.4), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    for ax, net in zip(fig.subplots(1, len(NETS)), NETS):
        draw_sigma0(ax, net, curves[net], log_scale)
    fig.suptitle(title, fontsize=11)
    write_atomically(path, lambda tmp: fig.savefig(tmp, format="png"))
    return path


def save_run_spectra(run: RunDir, path: Path | None = None, log_scale: bool = False) -> Path:
    """The picture of ``run``'s logged singular values, at ``path`` (default: the run's ``spectra.png``)."""
    path = Path(path) if path is not None else run.spectra_picture
    where = run.path.resolve()  # "." names no run; its folder and parent do (a study's group/trial-N-seed-S)
    written = save_spectra_picture(read_metrics(run), path, f"{where.parent.name}/{where.name}: top singular value of "
                                                            "each weight", log_scale)
    if written is None:
        raise ConfigError(f"{run.metrics_path} holds no singular values (spectra/...): the run was trained without "
                          "log.spectra_every. Log them from now on with: ganscape resume "
                          f"{run} log.spectra_every=N (N steps between measurements, e.g. 1000).")
    return written
