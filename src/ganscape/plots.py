"""Pictures of samples, drawn with matplotlib's object API (no global pyplot state)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


@torch.no_grad()
def discriminator_grid(D: torch.nn.Module, extent: tuple[float, float, float, float], resolution: int,
                       device: torch.device) -> np.ndarray:
    """D's logits on a regular grid over ``extent`` = (xmin, xmax, ymin, ymax), shape (res, res)."""
    xs = torch.linspace(extent[0], extent[1], resolution, device=device)
    ys = torch.linspace(extent[2], extent[3], resolution, device=device)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).reshape(-1, 2)
    was_training = D.training
    D.eval()
    logits = D(grid)
    D.train(was_training)
    return logits.reshape(resolution, resolution).float().cpu().numpy()


def plot_points(real: torch.Tensor, fake: torch.Tensor, D: torch.nn.Module | None, title: str,
                path: Path | None = None) -> np.ndarray:
    """Scatter real (grey) and generated (orange) 2-D points over D's logit contours.

    Saves a PNG at ``path`` when given and returns the picture as an RGB array.
    """
    real, fake = real.detach().float().cpu().numpy(), fake.detach().float().cpu().numpy()
    lo = np.minimum(real.min(0), np.percentile(fake, 1, axis=0)) - 0.5
    hi = np.maximum(real.max(0), np.percentile(fake, 99, axis=0)) + 0.5
    extent = (lo[0], hi[0], lo[1], hi[1])
    fig = Figure(figsize=(5.5, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if D is not None:
        device = next(D.parameters()).device
        logits = discriminator_grid(D, extent, 160, device)
        bound = max(float(np.abs(logits).max()), 1e-6)
        mesh = ax.imshow(logits, extent=extent, origin="lower", cmap="coolwarm_r", vmin=-bound, vmax=bound,
                         aspect="auto", alpha=0.75)
        fig.colorbar(mesh, ax=ax, label="D(x) logit (blue: real)")
    ax.scatter(real[:, 0], real[:, 1], s=2, c="0.25", label="real", alpha=0.5)
    ax.scatter(fake[:, 0], fake[:, 1], s=2, c="tab:orange", label="generated", alpha=0.5)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_title(title)
    ax.legend(loc="upper right", markerscale=4, fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def image_grid(images: torch.Tensor, columns: int = 8, padding: int = 2) -> np.ndarray:
    """Tile images in [-1, 1] (N, C, H, W) into one uint8 RGB picture (H', W', 3) on a white background."""
    images = images.detach().float().cpu().clamp(-1, 1)
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    pixels = ((images + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    n, h, w, _ = pixels.shape
    rows = -(-n // columns)
    grid = np.full((rows * (h + padding) + padding, columns * (w + padding) + padding, 3), 255, np.uint8)
    for i, image in enumerate(pixels):
        top, left = padding + (i // columns) * (h + padding), padding + (i % columns) * (w + padding)
        grid[top:top + h, left:left + w] = image
    return grid


TITLE_HEIGHT = 16  # pixels of the caption strip above an image grid


def with_title(rgb: np.ndarray, title: str) -> np.ndarray:
    """``rgb`` with a white strip above it that holds ``title`` in black (PIL's built-in font)."""
    from PIL import Image, ImageDraw

    canvas = Image.new("RGB", (rgb.shape[1], rgb.shape[0] + TITLE_HEIGHT), "white")
    canvas.paste(Image.fromarray(rgb), (0, TITLE_HEIGHT))
    ImageDraw.Draw(canvas).text((3, 2), title, fill="black")
    return np.asarray(canvas).copy()


def save_png(rgb: np.ndarray, path: Path) -> None:
    from PIL import Image

    Image.fromarray(rgb).save(path)
