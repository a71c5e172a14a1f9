"""Pictures of samples, drawn with matplotlib's object API (no global pyplot state)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from matplotlib.axis import Axis
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ganscape.jsonio import write_atomically

MIN_PICTURE_SIZE = 512  # pixels: sample grids are enlarged until their larger side is at least this
CAPTION_SIZE = 16  # font size (pixels) of captions and row labels


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


POINTS_FIGURE_SIZE = (6.0, 5.4)  # inches at 100 dpi: a 600 x 540 picture


def plot_points(real: torch.Tensor | None, fake: torch.Tensor, D: torch.nn.Module | None, title: str,
                path: Path | None = None) -> np.ndarray:
    """Scatter real (grey; none when ``real`` is None) and generated (orange) 2-D points over D's logit
    contours (when ``D`` is given).

    Saves a PNG at ``path`` when given and returns the picture as an RGB array.
    """
    fake = fake.detach().float().cpu().numpy()
    real = fake[:0] if real is None else real.detach().float().cpu().numpy()
    lo, hi = np.percentile(fake, 1, axis=0), np.percentile(fake, 99, axis=0)
    if len(real):
        lo, hi = np.minimum(real.min(0), lo), np.maximum(real.max(0), hi)
    extent = (lo[0] - 0.5, hi[0] + 0.5, lo[1] - 0.5, hi[1] + 0.5)
    fig = Figure(figsize=POINTS_FIGURE_SIZE, dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if D is not None:
        device = next(D.parameters()).device
        logits = discriminator_grid(D, extent, 160, device)
        bound = max(float(np.abs(logits).max()), 1e-6)
        mesh = ax.imshow(logits, extent=extent, origin="lower", cmap="coolwarm_r", vmin=-bound, vmax=bound,
                         aspect="auto", alpha=0.75)
        fig.colorbar(mesh, ax=ax, label="D(x) logit (blue: real)")
    if len(real):
        ax.scatter(real[:, 0], real[:, 1], s=2, c="0.25", label="real", alpha=0.5)
    ax.scatter(fake[:, 0], fake[:, 1], s=2, c="tab:orange", label="generated", alpha=0.5)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_title(title, wrap=True)
    ax.legend(loc="upper right", markerscale=4, fontsize=8)
    fig.tight_layout()
    if path is not None:
        write_atomically(path, lambda tmp: fig.savefig(tmp, format=Path(path).suffix[1:].lower() or "png"))
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


def upscale(rgb: np.ndarray, minimum: int = MIN_PICTURE_SIZE) -> np.ndarray:
    """``rgb`` enlarged by the smallest integer factor that makes its larger side at least ``minimum`` pixels,
    nearest-neighbour: each pixel becomes a square block, so nothing is blurred or invented."""
    factor = max(1, -(-minimum // max(rgb.shape[:2])))
    return rgb.repeat(factor, axis=0).repeat(factor, axis=1)


def class_rows(images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, int, list[int]]:
    """Samples rearranged a class per row, classes in the order they first appear: (tiles, columns, the class
    of each row). A row with fewer samples than the longest is filled with white tiles."""
    classes = list(dict.fromkeys(int(y) for y in labels))
    rows = [images[labels.cpu() == c] for c in classes]
    columns = max(len(row) for row in rows)
    white = images.new_ones(images.shape[1:])  # 1 is white in [-1, 1]
    tiles = torch.cat([torch.cat([row, white.expand(columns - len(row), *white.shape)]) for row in rows])
    return tiles, columns, classes


def row_labels(classes: list[int], class_names: tuple[str, ...] = ()) -> list[str]:
    """The label of each row of a conditional grid: the class's name when the data set named its classes,
    else its index."""
    return [class_names[c] if c < len(class_names) else str(c) for c in classes]


@lru_cache(maxsize=None)
def caption_font(size: int = CAPTION_SIZE):
    """DejaVu Sans, which matplotlib ships. PIL's built-in font is 10 pixels high with 2-pixel spaces, so the
    words of a caption ran together ("EMAgenerator")."""
    from matplotlib import font_manager
    from PIL import ImageFont

    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)


def caption_lines(title: str, width: int, font=None) -> list[str]:
    """``title`` broken between words into lines no wider than ``width`` pixels (a word longer than that
    gets a line of its own)."""
    font = font or caption_font()
    lines = []
    for word in title.split(" "):
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


MARGIN = 4  # pixels around caption and label text


def with_title(rgb: np.ndarray, title: str) -> np.ndarray:
    """``rgb`` below a white strip that holds ``title`` in black, wrapped to the picture's width."""
    from PIL import Image, ImageDraw

    font = caption_font()
    line_height = round(1.25 * font.size)
    lines = caption_lines(title, rgb.shape[1] - 2 * MARGIN, font)
    strip = len(lines) * line_height + 2 * MARGIN
    canvas = Image.new("RGB", (rgb.shape[1], rgb.shape[0] + strip), "white")
    canvas.paste(Image.fromarray(rgb), (0, strip))
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        draw.text((MARGIN, MARGIN + i * line_height), line, fill="black", font=font)
    return np.asarray(canvas).copy()


def with_row_labels(rgb: np.ndarray, labels: list[str]) -> np.ndarray:
    """``rgb`` right of a white strip that holds one label per row, each centred on its row of the grid."""
    from PIL import Image, ImageDraw

    font = caption_font()
    width = round(max(font.getlength(label) for label in labels)) + 2 * MARGIN
    canvas = Image.new("RGB", (rgb.shape[1] + width, rgb.shape[0]), "white")
    canvas.paste(Image.fromarray(rgb), (width, 0))
    draw = ImageDraw.Draw(canvas)
    row_height = rgb.shape[0] / len(labels)
    for i, label in enumerate(labels):
        draw.text((width - MARGIN, (i + 0.5) * row_height), label, fill="black", font=font, anchor="rm")
    return np.asarray(canvas).copy()


def sample_picture(images: torch.Tensor, columns: int = 8, labels: list[str] | None = None,
                   title: str | None = None) -> np.ndarray:
    """A grid of samples as it is saved: enlarged to at least ``MIN_PICTURE_SIZE`` pixels, with a label per
    row (``labels``) and a caption (``title``) when given."""
    rgb = upscale(image_grid(images, columns=columns))
    if labels:
        rgb = with_row_labels(rgb, labels)
    return with_title(rgb, title) if title else rgb


def count_axis(axis: Axis) -> None:
    """Ticks at whole numbers only, labelled without decimals, for an axis that counts things (steps, trials,
    modes). A log axis keeps its ticks (1, 2, ..., 9, 10, 20, ...) and labels the whole numbers among them."""
    if axis.get_scale() == "log":
        whole = FuncFormatter(lambda x, _: f"{x:.0f}" if x >= 1 and x == round(x) else "")
        axis.set_major_formatter(whole)
        axis.set_minor_formatter(whole)
    else:
        axis.set_major_locator(MaxNLocator(integer=True))


def save_png(rgb: np.ndarray, path: Path) -> None:
    """Write ``rgb`` to ``path`` (a PNG, or what its suffix names), atomically: a write cut short leaves no
    partial picture."""
    from PIL import Image

    kind = Image.registered_extensions().get(Path(path).suffix.lower(), "PNG")  # not from the .tmp name
    write_atomically(path, lambda tmp: Image.fromarray(rgb).save(tmp, format=kind))
